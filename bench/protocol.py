"""The three texts of the fidelity benchmarks, split once (docs/fidelity.md).

* **fit**: ``bench/corpus-fit.txt``, all of it. Hashes, shift tables and quantization
  scales are computed from this text only.
* **tune**: the odd paragraphs (1, 3, 5, ...) of ``bench/corpus.txt``. Every setting (fit
  method, steps, noise, shift range, fit data, layer-wise fitting, the best mode...) is
  chosen by its score on this text. These paragraphs were the evaluation half of the
  earlier per-head runs, on which their settings were chosen: under this protocol those
  choices were made on the tuning text.
* **eval**: the even paragraphs (0, 2, 4, ...) of ``bench/corpus.txt``, held out: the
  reported numbers come from this text and no choice looks at it.

No sentence is in two texts (the paragraphs of ``corpus.txt`` are distinct, and
``corpus-fit.txt`` shares none of them).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["SPLITS", "CORPUS", "FIT_CORPUS", "paragraphs", "texts", "sentences", "digest"]

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus.txt"
FIT_CORPUS = HERE / "corpus-fit.txt"
SPLITS = ("fit", "tune", "eval")


def paragraphs(text):
    """Non-empty paragraphs (separated by blank lines), stripped."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def texts():
    """{"fit": text, "tune": text, "eval": text} of the protocol (module docstring)."""
    paras = paragraphs(CORPUS.read_text())
    return {"fit": "\n\n".join(paragraphs(FIT_CORPUS.read_text())),
            "tune": "\n\n".join(paras[1::2]),
            "eval": "\n\n".join(paras[0::2])}


def sentences(text, min_words=4):
    """Sentences of ``text``: split after ., ! or ? followed by white space, within each
    paragraph; sentences of fewer than ``min_words`` words are dropped."""
    out = []
    for p in paragraphs(text):
        for s in re.split(r"(?<=[.!?])\s+", " ".join(p.split())):
            if len(s.split()) >= min_words:
                out.append(s)
    return out


def digest():
    """SHA-256 (16 hex digits) of the two corpus files: the protocol's text identity."""
    h = hashlib.sha256(CORPUS.read_bytes() + b"|" + FIT_CORPUS.read_bytes())
    return h.hexdigest()[:16]
