"""Fidelity of the whole model: every attention head of all-MiniLM-L6-v2 through the core.

    python -m hamattn.bench.e2e [--bits 16,32,64,128] [--modes hsoftmax,topk,linear]
        [--layers 6] [--tiny] [--cache build/e2e]

``make bench-e2e`` runs this (one process, one BLAS thread). The NumPy MiniLM
(:mod:`.minilm`) embeds sentences with every head of every layer replaced by
:func:`hamattn.golden.attention`: int8 Q, K, V (per head and tensor scales from the fit
text), the head's own fitted hash (and its own ``hsoftmax`` shift table), the golden model's
integer value path, de-quantized. The texts follow the protocol of :mod:`.protocol`
(docs/fidelity.md): hashes are fitted on the sentences of the fit text, every choice is made
on the tuning sentences, and the rows with ``split = "eval"`` come from held-out sentences.

Steps, each fit cached under ``--cache`` by a key of its settings (a rerun reuses them):

1. b = 64, each head's hash fitted on the exact model's activations (``fit = exact``); every
   mode, then the references, scored on the tuning and the evaluation sentences.
2. The best mode (largest mean of embedding cosine and similarity Spearman on the tuning
   sentences) is fitted again layer by layer (``fit = layerwise``): the hashes of layer l
   on the activations that the already replaced layers 0..l-1 produce, as post-training
   quantization does. The better fit on the tuning sentences is kept.
3. That mode and fit at every other b of ``--bits``.

Scores: mean cosine of the sentence embeddings to the exact model's, and the Spearman
correlation of the pairwise cosine-similarity matrix (upper triangle) with the exact
model's. References: ``int8-softmax`` (exact softmax on the int8 vectors) and ``meanpool``
(mean of V: an attention that learnt nothing). Writes ``bench/results/e2e.json``,
``e2e.md`` and ``e2e.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import protocol
from ..config import CoreConfig
from ..fit import fit_hash, save_weights
from ..golden import attention, quant_scale, quantize, softmax_attention
from .fidelity import _repo_path, machine, method_bits
from .minilm import MissingExtra, load
from ..process import stoppable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE.parent / "build" / "e2e"
D_HEAD = 32
WIDTH = 8
#: keys per window of the core: the longest sentence of the texts is shorter
N_KEYS = 128
#: in the order they are scored (the likely best first: a long run shows it early)
MODES = ("hsoftmax", "topk", "linear")
#: the fit settings (the per-head bench's, chosen on what is now the tuning text)
FIT = {"method": "ranking-w8", "iters": 600, "noise": 0.3, "smax": 32,
       "shift_queries": 16384, "seed": 0}
REFERENCES = ("int8-softmax", "meanpool")


# --------------------------------------------------------------------------- activations

def collect(model, sentences, layers, attention=None, batch=32):
    """Float Q, K, V of the first ``layers`` layers for each sentence, real tokens only: a
    list per layer of three lists of arrays (heads, n_i, d). ``attention`` replaces heads
    (see MiniLM.forward)."""
    acts = [tuple([None] * len(sentences) for _ in range(3)) for _ in range(layers)]
    order = sorted(range(len(sentences)), key=lambda i: len(model.tokenize(sentences[i])))
    for s in range(0, len(order), batch):                    # batches of similar length
        idx = order[s:s + batch]
        ids, mask = model.batch([sentences[i] for i in idx])
        _, qkv = model.forward(ids, mask, collect=True, attention=attention, layers=layers)
        for j, (i, L) in enumerate(zip(idx, mask.sum(axis=1))):
            for layer in range(layers):
                for out, a in zip(acts[layer], qkv[layer]):
                    out[i] = np.ascontiguousarray(a[j, :, :L])
    return acts


def spearman(a, b):
    """Spearman rank correlation of two 1-D float arrays (ties get their mean rank)."""
    def ranks(x):
        x = np.asarray(x, dtype=np.float64)
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=np.float64)
        _, inv, cnt = np.unique(x, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / cnt[inv]
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else 0.0


def scores(emb, ref):
    """(mean cosine of unit embeddings to the reference ones, Spearman of the upper
    triangles of the two pairwise similarity matrices)."""
    cos = float(np.mean(np.sum(emb * ref, axis=1)))
    iu = np.triu_indices(len(emb), 1)
    return cos, spearman((emb @ emb.T)[iu], (ref @ ref.T)[iu])


# --------------------------------------------------------------------------- heads

class Heads:
    """The fitted heads of one setting: weights files (with the scales) under a folder,
    and a replacement attention for :meth:`MiniLM.forward` in any mode."""

    def __init__(self, folder, layers, heads, b, smax):
        self.folder, self.layers, self.heads, self.b, self.smax = \
            Path(folder), layers, heads, b, smax

    def path(self, layer, head):
        return self.folder / f"L{layer}H{head}.npz"

    def done(self, layer):
        return all(self.path(layer, h).is_file() for h in range(self.heads))

    def scales(self, layer, head):
        with np.load(self.path(layer, head)) as z:
            return tuple(float(x) for x in z["scales"])

    def attention(self, mode, k=None, upto=None):
        """attention(layer, head, q, k, v) through the golden model in ``mode`` for the
        layers below ``upto`` (all fitted layers by default); exact softmax elsewhere."""
        upto = self.layers if upto is None else upto
        cfgs = {(L, h): (CoreConfig.create(d=D_HEAD, w=WIDTH, b=self.b, N=N_KEYS, mode=mode,
                                           k=k, smax=self.smax,
                                           weights=str(self.path(L, h))),
                         self.scales(L, h))
                for L in range(upto) for h in range(self.heads)}

        def run(layer, head, q, kk, v):
            c = cfgs.get((layer, head))
            return None if c is None else attention(q, kk, v, c[0], c[1])
        return run


def reference_attention(kind, scales, layers):
    """attention(layer, head, q, k, v) of a reference in the first ``layers`` layers:
    ``int8-softmax`` (exact softmax of the de-quantized int8 vectors, ``scales(layer,
    head)``) or ``meanpool`` (the mean of V)."""

    def run(layer, head, q, k, v):
        if layer >= layers:
            return None
        if kind == "meanpool":
            return np.repeat(v.mean(axis=0, keepdims=True), len(q), axis=0)
        s = scales(layer, head)
        return softmax_attention(*(quantize(x, sc, WIDTH) * sc for x, sc in zip((q, k, v), s)))
    return run


def fit_key(b, fit, layerwise_mode, fit_sentences, topk=None):
    """Cache folder name of a setting: its settings and the fit text (and, for a layer-wise
    fit, the mode and k of the replaced layers below)."""
    lw = {"layerwise": layerwise_mode}
    if layerwise_mode == "topk":
        lw["k"] = topk
    text = json.dumps({"b": b, **fit, **lw, "d": D_HEAD, "w": WIDTH,
                       "fit": hashlib.sha256("\n".join(fit_sentences).encode()).hexdigest()},
                      sort_keys=True)
    return f"b{b}-{'lw-' + layerwise_mode if layerwise_mode else 'exact'}-" + \
        hashlib.sha256(text.encode()).hexdigest()[:12]


def fit_heads(model, fit_sentences, b, fit, layers, cache, exact_acts, layerwise_mode=None,
              topk=None, progress=None):
    """Fit every head of the first ``layers`` layers at ``b`` (cached); ``exact_acts(l)``
    gives the exact model's activations of layer l (see :func:`collect`). With
    ``layerwise_mode`` the heads of layer l are fitted on the activations of the model whose
    layers below l already run through the core in that mode. Returns :class:`Heads`."""
    H = model.heads
    heads = Heads(Path(cache) / fit_key(b, fit, layerwise_mode, fit_sentences, topk), layers,
                  H, b, fit["smax"])
    heads.folder.mkdir(parents=True, exist_ok=True)
    base, wbits = method_bits(fit["method"])
    for layer in range(layers):
        if heads.done(layer):
            if progress:
                progress(H)
            continue
        if layerwise_mode and layer > 0:
            acts = collect(model, fit_sentences, layer + 1,
                           heads.attention(layerwise_mode, k=topk, upto=layer))[layer]
        else:
            acts = exact_acts(layer)
        for h in range(H):
            path = heads.path(layer, h)
            if path.is_file():
                if progress:
                    progress(1)
                continue
            Q, K, V = ([a[h] for a in t] for t in acts)
            scales = tuple(quant_scale(np.concatenate(t), WIDTH) for t in (Q, K, V))
            qi, ki, vi = ([quantize(a, s, WIDTH) for a in t] for t, s in zip((Q, K, V), scales))
            arrays = fit_hash(qi, ki, b, base, wbits, fit["seed"],
                              logit_scale=scales[0] * scales[1] / math.sqrt(D_HEAD),
                              smax=fit["smax"], iters=fit["iters"], noise=fit["noise"],
                              shift_queries=fit["shift_queries"],
                              values=vi if base == "ranking" else None)
            tmp = path.with_suffix(".tmp.npz")
            save_weights(tmp, arrays)
            with np.load(tmp) as z:
                keep = {k: z[k] for k in z.files}
            with open(tmp, "wb") as f:
                np.savez(f, **keep, scales=np.array(scales), g=np.asarray(arrays["g"]))
            os.replace(tmp, path)
            if progress:
                progress(1)
    return heads


# --------------------------------------------------------------------------- the run

def run_bench(bits=(16, 32, 64, 128), modes=MODES, topk=(4, 8), layers=6, fit=None,
              sentences=None, cache=CACHE, log=print, layerwise=True, checkpoint=None,
              depth=None):
    """The steps of the module docstring; returns the result document (without machine
    information). ``sentences``: at most this many sentences per text (all by default).
    ``depth``: embed with the first this many layers of the model only (a tiny model for
    tests; default all), of which the first ``layers`` are replaced.
    ``checkpoint(doc)`` is called with the document so far after every scored setting (a
    long run leaves its partial results)."""
    from tqdm import tqdm      # lazy: only for a progress bar on a terminal

    fit = dict(FIT if fit is None else fit)
    model = load()
    depth = model.layers if depth is None else min(depth, model.layers)
    layers = min(layers, depth)
    texts = protocol.texts()
    sents = {k: protocol.sentences(t)[:sentences] for k, t in texts.items()}
    log(f"sentences: fit {len(sents['fit'])}, tune {len(sents['tune'])}, eval "
        f"{len(sents['eval'])}; {layers} of {depth} layers x {model.heads} heads replaced")
    ref = {s: model.embed(sents[s], batch=16, layers=depth) for s in ("tune", "eval")}
    rows = []
    t0 = time.perf_counter()
    doc = {"rows": rows, "best_mode": None, "best_k": None, "best_fit": None, "b_first": None,
           "sentences": {k: len(v) for k, v in sents.items()}, "layers_replaced": layers,
           "model_layers": depth, "fit_settings": fit, "complete": False}

    def score(attn, split):
        return scores(model.embed(sents[split], attention=attn, batch=16, layers=depth),
                      ref[split])

    def add(mode, b, method, fitway, attn, k=None):
        out = []
        for split in ("tune", "eval"):
            c, s = score(attn, split)
            row = {"mode": mode, "b": b, "method": method, "fit": fitway,
                   "embedding_cosine": round(c, 6), "similarity_spearman": round(s, 6),
                   "split": split}
            if k is not None:
                row["k"] = k
            rows.append(row)
            out.append(row)
        log(f"  {mode}{'' if k is None else f' k={k}'} b={b} {method} ({fitway}): "
            f"tune {out[0]['embedding_cosine']:.4f} / {out[0]['similarity_spearman']:.4f}, "
            f"eval {out[1]['embedding_cosine']:.4f} / {out[1]['similarity_spearman']:.4f} "
            f"[{time.perf_counter() - t0:.0f} s]")
        doc["seconds"] = round(time.perf_counter() - t0, 1)
        if checkpoint:
            checkpoint(doc)
        return out[0]

    exact = []

    def exact_acts(layer):
        if not exact:
            log("exact activations of the fit sentences")
            exact.extend(collect(model, sents["fit"], layers))
        return exact[layer]

    def fit_all(b, lw_mode=None, k=None):
        bar = tqdm(total=layers * model.heads, unit="head", leave=False,
                   desc=f"fit b={b} {'layerwise ' + lw_mode if lw_mode else 'exact'}")
        heads = fit_heads(model, sents["fit"], b, fit, layers, cache, exact_acts, lw_mode, k,
                          progress=bar.update)
        bar.close()
        return heads

    def tune_score(row):
        return (row["embedding_cosine"] + row["similarity_spearman"]) / 2

    # 1. b = 64 (or the b given nearest to it), exact activations, every mode
    b0 = doc["b_first"] = min(bits, key=lambda b: abs(math.log2(b / 64)))
    heads0 = fit_all(b0)
    cands = []
    for mode in modes:
        for k in (topk if mode == "topk" else (None,)):
            r = add(mode, b0, fit["method"], "exact", heads0.attention(mode, k=k), k)
            cands.append((tune_score(r), mode, k))
    for kind in REFERENCES:
        add(kind, None, "reference", None, reference_attention(kind, heads0.scales, layers))
    _, best_mode, best_k = max(cands, key=lambda c: c[0])
    doc.update(best_mode=best_mode, best_k=best_k, best_fit="exact")
    if checkpoint:
        checkpoint(doc)
    log(f"best mode on the tuning sentences: {best_mode}"
        f"{'' if best_k is None else f' k={best_k}'}")
    # 2. layer-by-layer fit of the best mode
    best_fit = "exact"
    if layerwise and layers > 1:
        heads_lw = fit_all(b0, best_mode, best_k)
        r = add(best_mode, b0, fit["method"], "layerwise", heads_lw.attention(best_mode, best_k),
                best_k)
        exact_row = next(x for x in rows if x["mode"] == best_mode and x["b"] == b0
                         and x["fit"] == "exact" and x["split"] == "tune"
                         and x.get("k") == best_k)
        best_fit = doc["best_fit"] = \
            "layerwise" if tune_score(r) > tune_score(exact_row) else "exact"
        log(f"better fit on the tuning sentences: {best_fit}")
    # 3. the other code lengths
    for b in bits:
        if b == b0:
            continue
        heads = fit_all(b, best_mode if best_fit == "layerwise" else None, best_k)
        add(best_mode, b, fit["method"], best_fit, heads.attention(best_mode, best_k), best_k)
    doc.update(complete=True, seconds=round(time.perf_counter() - t0, 1))
    return doc


# --------------------------------------------------------------------------- outputs

def eval_rows(doc):
    return [r for r in doc["rows"] if r["split"] == "eval"]


def markdown(doc):
    """The tables of docs/fidelity.md from a result document."""
    out = ["Held-out evaluation sentences (split `eval`), every head of "
           f"{doc['layers_replaced']} layers replaced; tuning-split figures in "
           "`e2e.json`.", "",
           "| mode | b | fit | embedding cosine | similarity Spearman | tune cos / Spearman |",
           "|---|---:|---|---:|---:|---:|"]
    tune = {(r["mode"], r["b"], r["fit"], r.get("k")): r for r in doc["rows"]
            if r["split"] == "tune"}
    for r in eval_rows(doc):
        t = tune[(r["mode"], r["b"], r["fit"], r.get("k"))]
        name = r["mode"] + (f" k={r['k']}" if "k" in r else "")
        out.append(f"| {name} | {r['b'] or ''} | {r['fit'] or 'reference'} | "
                   f"{r['embedding_cosine']:.4f} | {r['similarity_spearman']:.4f} | "
                   f"{t['embedding_cosine']:.4f} / {t['similarity_spearman']:.4f} |")
    if not doc.get("complete", True):
        out += ["", "(A partial run: the rows scored so far.)"]
    g = doc.get("goal")
    if g:
        out += ["", f"Goal (eval, b = 64, {g['mode']}, fit {g['fit']}): embedding cosine "
                f"{g['embedding_cosine']:.4f} (>= 0.95: {'met' if g['cosine_met'] else 'not met'})"
                f", similarity Spearman {g['similarity_spearman']:.4f} (>= 0.95: "
                f"{'met' if g['spearman_met'] else 'not met'})."]
    return "\n".join(out) + "\n"


def plot(doc, path):
    import matplotlib        # lazy: slow to import, needed only for the plots
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = eval_rows(doc)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, title in ((axes[0], "embedding_cosine", "embedding cosine to exact"),
                              (axes[1], "similarity_spearman", "similarity-matrix Spearman")):
        best = sorted((r["b"], r[metric]) for r in rows if r["mode"] == doc["best_mode"]
                      and r["fit"] == doc["best_fit"] and r.get("k") == doc["best_k"])
        if best:
            ax.plot(*zip(*best), "o-", color="tab:red",
                    label=f"{doc['best_mode']} ({doc['best_fit']} fit)")
        others = [r for r in rows if r["b"] == doc["b_first"] and
                  not (r["mode"] == doc["best_mode"] and r["fit"] == doc["best_fit"]
                       and r.get("k") == doc["best_k"])]
        for i, r in enumerate(others):
            name = r["mode"] + (f" k={r['k']}" if "k" in r else "") + f" ({r['fit']} fit)"
            ax.plot([r["b"]], [r[metric]], "sdv^P"[i % 5], label=name)
        for r, ls in zip((r for r in rows if r["method"] == "reference"), ("--", "-.")):
            ax.axhline(r[metric], color="k", ls=ls, lw=1, label=r["mode"])
        ax.axhline(0.95, color="tab:green", lw=0.8, label="goal 0.95")
        ax.set_xscale("log", base=2)
        bs = sorted({r["b"] for r in rows if r["b"]})
        ax.set_xticks(bs)
        ax.set_xticklabels([str(b) for b in bs])
        ax.set_xlabel("code bits b")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"all-MiniLM-L6-v2, every head of {doc['layers_replaced']} layers through "
                 f"the core (golden model), {doc['sentences']['eval']} held-out sentences",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def finish(doc):
    """Add the goal of issue 19 (eval split, b = 64, the chosen mode and fit)."""
    g = [r for r in eval_rows(doc) if r["b"] == 64 and r["mode"] == doc["best_mode"]
         and r["fit"] == doc["best_fit"] and r.get("k") == doc["best_k"]]
    if g:
        r = g[0]
        doc["goal"] = {"mode": r["mode"], "fit": r["fit"], "b": 64,
                       "embedding_cosine": r["embedding_cosine"],
                       "similarity_spearman": r["similarity_spearman"],
                       "cosine_met": r["embedding_cosine"] >= 0.95,
                       "spearman_met": r["similarity_spearman"] >= 0.95}
    return doc


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.e2e", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bits", default="16,32,64,128", help="code lengths b")
    ap.add_argument("--modes", default=",".join(MODES), help="modes scored at b = 64")
    ap.add_argument("--topk", default="4,8", help="k of the topk mode (one or more)")
    ap.add_argument("--layers", type=int, default=6, help="layers replaced (from the first)")
    ap.add_argument("--depth", type=int, default=None,
                    help="embed with the first DEPTH layers of the model only (a tiny model "
                    "for quick tests) [default: all 6]")
    ap.add_argument("--sentences", type=int, default=None,
                    help="at most this many sentences of each text [default: all]")
    ap.add_argument("--iters", type=int, default=FIT["iters"])
    ap.add_argument("--noise", type=float, default=FIT["noise"])
    ap.add_argument("--method", default=FIT["method"], help="fit method of every head")
    ap.add_argument("--no-layerwise", dest="layerwise", action="store_false",
                    help="skip the layer-by-layer fit")
    ap.add_argument("--cache", type=Path, default=CACHE, help="fit cache folder")
    ap.add_argument("--json", type=Path, default=RESULTS / "e2e.json")
    ap.add_argument("--png", type=Path, default=RESULTS / "e2e.png")
    ap.add_argument("--from-json", action="store_true",
                    help="only redraw the plot and the Markdown table from --json")
    args = ap.parse_args(argv)
    md_path = args.json.with_suffix(".md")
    if args.from_json:
        doc = finish(json.loads(args.json.read_text()))
    else:
        try:
            method_bits(args.method)
        except ValueError as e:
            ap.error(str(e))
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        for m in modes:
            if m not in MODES:
                ap.error(f"--modes {m!r} is not allowed: one of {', '.join(MODES)}")
        fit = {**FIT, "iters": args.iters, "noise": args.noise, "method": args.method}
        info = {"description": "all-MiniLM-L6-v2 with every attention head of the replaced "
                "layers running through hamattn's golden model (int8, fitted hash per head); "
                "sentence-embedding cosine and similarity-matrix Spearman against the exact "
                "model; see docs/fidelity.md",
                "protocol": {"fit": _repo_path(protocol.FIT_CORPUS),
                             "tune": "odd paragraphs of bench/corpus.txt",
                             "eval": "even paragraphs of bench/corpus.txt",
                             "corpus_digest": protocol.digest()},
                "machine": machine()}

        def write(partial):
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(finish({**info, **partial}), indent=1) + "\n")
            md_path.write_text(markdown(finish({**info, **partial})))
        try:
            doc = run_bench([int(x) for x in args.bits.split(",")], modes,
                            [int(x) for x in args.topk.split(",")], args.layers, fit,
                            args.sentences, args.cache, layerwise=args.layerwise,
                            checkpoint=write, depth=args.depth)
        except MissingExtra as e:
            print(f"bench-e2e: {e}", file=sys.stderr)
            return 2
        write(doc)
        doc = finish({**info, **doc})
    plot(doc, args.png)
    md_path.write_text(markdown(doc))
    print(markdown(doc))
    print(f"wrote {args.json}, {md_path} and {args.png}")
    return 0


if __name__ == "__main__":
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        # one BLAS thread: the bench must not take more than one core of a shared machine
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "hamattn.bench.e2e", *sys.argv[1:]])
    sys.exit(stoppable("python -m hamattn.bench.e2e", main))
