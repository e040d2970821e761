"""One real window for the Verilog: a MiniLM head's fitted hash and its int8 Q, K and V.

    python -m hamattn.bench.fidelity_window [--layer 1] [--head 7] [--bits 64]
        [--method ranking-w8] [-o verif/data]

Fits the hash of one head of all-MiniLM-L6-v2 exactly as ``make bench-fidelity`` does (the
same fit windows, int8 scales, method, seed and settings, :data:`.fidelity.FIT_SETTINGS`) and
writes two files into the output folder:

* ``minilm_l<L>h<H>_b<b>.npz``: the weights file of SPEC §2 (W, θ, Wq, θq, shifts);
* ``minilm_window.npz``: ``keys``, ``values``, ``queries`` (1 × 128 × 32, int8 as int16) of
  the first evaluation window, with ``layer``, ``head``, ``b``, ``smax`` and the mean cosine
  of the golden model's hsoftmax output against exact softmax attention on it (``cosine``).

``tests/test_cocotb.py::test_real_minilm_window`` runs that window through the generated
Verilog (cocotb, Verilator) and compares every output beat with the golden model, bit for
bit, so that one real window of the fidelity numbers is checked on the RTL in ``make test``
without the optional extra. The files in ``verif/data`` were written before the protocol
of docs/fidelity.md (fit windows from the even paragraphs of ``corpus.txt`` and
``corpus-fit.txt``, the window from its odd paragraphs); a rerun now fits on the fit text
and takes the first held-out window. Needs the extra (``make install-fidelity``) and, the
first time, the activations (cached by ``make bench-fidelity`` in ``build/fidelity``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from . import fidelity as F
from ..config import CoreConfig
from ..fit import save_weights
from ..golden import run
from .minilm import MissingExtra, load
from ..process import stoppable

OUT = F.HERE.parent / "verif" / "data"


def export(layer, head, b, method, out_dir, cache=F.CACHE):
    """Fit (layer, head) at ``b`` with ``method`` and write the two files; returns their
    paths and the window's cosine."""

    s = F.FIT_SETTINGS
    model = load()
    acts = F.cached_activations(model, cache)
    fit = acts["fit"]
    eQ, eK, eV = (a[0, layer, head] for a in acts["eval"])   # the first evaluation window
    (sq, sk, sv), fit_int = F.head_scales(tuple(a[:, layer, head] for a in fit))
    q, k, v = F.quantize(eQ, sq), F.quantize(eK, sk), F.quantize(eV, sv)
    arrays = F.fit_method(fit_int, b, method, sq * sk / math.sqrt(F.D_HEAD), **s)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wpath = out_dir / f"minilm_l{layer}h{head}_b{b}.npz"
    save_weights(wpath, arrays)
    n = len(q)
    cfg = CoreConfig.create(d=F.D_HEAD, w=F.WIDTH, b=b, N=n, mode="hsoftmax",
                            smax=s["smax"], weights=str(wpath))
    out = run(cfg, k, v, q).out * sv
    ref = F._softmax(eQ @ eK.T / math.sqrt(F.D_HEAD)) @ eV
    cos = float(np.mean(np.sum(out * ref, 1) /
                        (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1) + 1e-30)))
    dpath = out_dir / "minilm_window.npz"
    np.savez(dpath, keys=k[None].astype(np.int16), values=v[None].astype(np.int16),
             queries=q[None].astype(np.int16), layer=layer, head=head, b=b,
             smax=s["smax"], method=method, cosine=cos)
    return wpath, dpath, cos


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.fidelity_window",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--layer", type=int, default=1, help="0..5 [default: 1]")
    ap.add_argument("--head", type=int, default=7, help="0..11 [default: 7]")
    ap.add_argument("--bits", type=int, default=64, help="code bits b [default: 64]")
    ap.add_argument("--method", default="ranking-w8", help="fit method [default: ranking-w8]")
    ap.add_argument("-o", "--output", type=Path, default=OUT, help="[default: verif/data]")
    args = ap.parse_args(argv)
    if not 0 <= args.layer < 6:
        ap.error(f"--layer {args.layer} is not allowed: 0..5")
    if not 0 <= args.head < 12:
        ap.error(f"--head {args.head} is not allowed: 0..11")
    if not 1 <= args.bits <= 1024:
        ap.error(f"--bits {args.bits} is not allowed: 1..1024")
    try:
        F.method_bits(args.method)
    except ValueError as e:
        ap.error(str(e))
    try:
        wpath, dpath, cos = export(args.layer, args.head, args.bits, args.method, args.output)
    except MissingExtra as e:
        print(f"fidelity_window: {e}", file=sys.stderr)
        return 2
    print(f"wrote {wpath} and {dpath}: layer {args.layer} head {args.head}, b = {args.bits}, "
          f"{args.method}; hsoftmax cosine on this window {cos:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(stoppable("python -m hamattn.bench.fidelity_window", main))
