"""The whole-model benchmark (bench/e2e.py) in a tiny variant, when the optional
'fidelity' extra is installed (`make install-fidelity`); skipped otherwise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hamattn.bench import e2e, protocol
from hamattn.golden import softmax_attention


def test_protocol_texts_are_disjoint():
    t = protocol.texts()
    sents = {k: set(protocol.sentences(v)) for k, v in t.items()}
    assert all(len(s) > 50 for s in sents.values())
    assert not sents["fit"] & sents["tune"] and not sents["fit"] & sents["eval"]
    assert not sents["tune"] & sents["eval"]


def test_spearman():
    a = np.array([0.1, 0.5, 0.3, 0.9])
    assert e2e.spearman(a, a) == pytest.approx(1.0)
    assert e2e.spearman(a, -a) == pytest.approx(-1.0)
    # ties take their mean rank: ranks (0, 2.5, 1, 2.5) against (0, 1, 2, 3)
    r = e2e.spearman(np.array([1.0, 3.0, 2.0, 3.0]), np.arange(4.0))
    x, y = np.array([0, 2.5, 1, 2.5]) - 1.5, np.arange(4.0) - 1.5
    assert r == pytest.approx(x @ y / math.sqrt((x @ x) * (y @ y)))


def test_exact_softmax_replacement_gives_the_exact_model(model):
    sents = protocol.sentences(protocol.texts()["eval"])[:4]
    ref = model.embed(sents, layers=2)
    emb = model.embed(sents, attention=lambda L, h, q, k, v: softmax_attention(q, k, v),
                      batch=3, layers=2)
    cos, rho = e2e.scores(emb, ref)
    assert abs(cos - 1.0) < 1e-6 and abs(rho - 1.0) < 1e-9
    # a replacement that changes the heads does change the embeddings
    flat = model.embed(sents, attention=lambda L, h, q, k, v: np.repeat(
        v.mean(axis=0, keepdims=True), len(q), axis=0), layers=2)
    assert e2e.scores(flat, ref)[0] < 0.999


def test_tiny_run_writes_the_schema(model, tmp_path):
    # a one-layer model (the first layer of MiniLM, pooled), every head replaced
    args = ["--layers", "1", "--depth", "1", "--sentences", "5", "--bits", "16", "--iters", "3",
            "--modes", "hsoftmax,topk", "--topk", "2", "--cache", str(tmp_path / "cache"),
            "--json", str(tmp_path / "e2e.json"), "--png", str(tmp_path / "e2e.png")]
    assert e2e.main(args) == 0
    doc = json.loads((tmp_path / "e2e.json").read_text())
    assert doc["complete"] and doc["best_mode"] in ("hsoftmax", "topk")
    assert {r["split"] for r in doc["rows"]} == {"tune", "eval"}
    modes = {r["mode"] for r in doc["rows"]}
    assert modes == {"int8-softmax", "meanpool", "hsoftmax", "topk"}
    for r in doc["rows"]:
        assert {"mode", "b", "method", "embedding_cosine", "similarity_spearman",
                "split"} <= r.keys()
        for key in ("embedding_cosine", "similarity_spearman"):
            assert math.isfinite(r[key]) and -1.0 <= r[key] <= 1.0
        if r["mode"] in ("hsoftmax", "topk"):
            assert r["b"] == 16 and r["method"] == "ranking-w8" and r["fit"] == "exact"
    # the fits are cached: one weights file per head of the replaced layer, with its scales
    files = sorted((tmp_path / "cache").glob("*/L*H*.npz"))
    assert len(files) == 12
    with np.load(files[0]) as z:
        assert z["scales"].shape == (3,) and (z["scales"] > 0).all()
    assert (tmp_path / "e2e.md").read_text().count("| hsoftmax | 16 |") == 1
    assert (tmp_path / "e2e.png").stat().st_size > 1000
