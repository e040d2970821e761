"""bench/goals.py: the summary of the goal builds (rows, best folding, Markdown) from
candidate reports, without building anything."""

import json

import pytest

from hamattn.bench import goals as G
from hamattn.config import CoreConfig


def _report(used, available, fmax, error=None):
    rep = {"utilization": {"logic_cells": {"used": used, "available": available},
                           "bram": {"used": 3, "available": 30}},
           "fmax_mhz": fmax, "bitstream": {"bytes": 100}, "commit": "abc1234"}
    if error:
        rep["error"] = error
    return rep


@pytest.fixture
def cand_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "CAND_DIR", tmp_path)
    return tmp_path


def test_best_is_the_fitting_candidate_with_most_tokens_per_second(cand_dir):
    goal = "icebreaker-linear"
    board, base, folds = G.GOALS[goal]
    # the least folded one does not fit; of the two that fit, the slower clock still wins
    # when it needs fewer cycles per query
    reps = [_report(6000, 5280, None, error="does not fit"), _report(5000, 5280, 20.0),
            _report(4000, 5280, 30.0)]
    for fold, rep in zip(folds, reps):
        (cand_dir / f"{G.candidate_name(goal, fold)}.json").write_text(json.dumps(rep))
    rows, best = G.summarize([goal])
    assert [r["fits"] for r in rows] == [False, True, True]
    qps = []
    for fold, rep in zip(folds[1:], reps[1:]):
        cfg = CoreConfig.create(**base, **fold)
        cycles = cfg.at(cfg.kv_interval, 0) + cfg.at(cfg.q_interval, cfg.N)
        qps.append(rep["fmax_mhz"] * 1e6 / cycles)
    want = folds[1 + max(range(2), key=lambda i: qps[i])]
    assert (best[goal]["lanes"], best[goal]["rows"]) == (want["lanes"], want["rows"])
    assert rows[0]["tokens_per_s"] is None and rows[0]["logic_cells"] == 6000
    md = G.markdown(rows, best)
    assert md.count("**best**") == 1 and "6000/5280" in md


def test_no_fitting_candidate_gives_no_best(cand_dir):
    goal = "ulx3s-topk"
    fold = G.GOALS[goal][2][0]
    (cand_dir / f"{G.candidate_name(goal, fold)}.json").write_text(
        json.dumps(_report(30000, 24288, None, error="does not fit")))
    rows, best = G.summarize([goal])
    assert len(rows) == 1 and best[goal] is None


def test_unknown_goal_is_refused(capsys):
    assert G.main(["--only", "nosuchboard", "--summary-only"]) == 2
    assert "matches no goal" in capsys.readouterr().err
