"""bench/goals.py: the search over (P, M, T) with a fake builder and estimator (no tool
runs), the summary of the goal builds (rows, best, Markdown) from candidate reports, and the
CPU reference timed for real at the goal sizes."""

import json

import pytest

from hamattn.bench import goals as G
from hamattn.config import CoreConfig


def _report(used, available, fmax, error=None, key="now"):
    rep = {"utilization": {"logic_cells": {"used": used, "available": available},
                           "bram": {"used": 3, "available": 30}},
           "fmax_mhz": fmax, "bitstream": {"bytes": 100}, "commit": "abc1234",
           "build_key": key}
    if error:
        rep["error"] = error
    return rep


@pytest.fixture
def cand_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "CAND_DIR", tmp_path)
    return tmp_path


def _key_now(cfg, board):
    """The build key of the RTL of now, in place of the real one (no Verilog generated)."""
    return "now"


def test_best_is_the_fitting_candidate_with_most_tokens_per_second(cand_dir):
    goal = "icebreaker-linear"
    board, base, _ = G.GOALS[goal]
    folds = sorted(G.folds(goal), key=lambda f: -f["rows"])
    # the least folded one does not fit; of the two that fit, the slower clock still wins
    # when it needs fewer cycles per query
    reps = [_report(6000, 5280, None, error="does not fit"), _report(5000, 5280, 20.0),
            _report(4000, 5280, 30.0)]
    for fold, rep in zip(folds, reps):
        (cand_dir / f"{G.candidate_name(goal, fold)}.json").write_text(json.dumps(rep))
    rows, best = G.summarize([goal], {(base["d"], base["N"]): {"tokens_per_s": 1000.0}},
                             key=_key_now)
    rows.sort(key=lambda r: -r["rows"])
    assert [r["fits"] for r in rows] == [False, True, True]
    qps = []
    for fold, rep in zip(folds[1:], reps[1:]):
        cfg = CoreConfig.create(**base, **fold)
        cycles = cfg.at(cfg.kv_interval, 0) + cfg.at(cfg.q_interval, cfg.N)
        qps.append(rep["fmax_mhz"] * 1e6 / cycles)
    i = max(range(2), key=lambda i: qps[i])
    want = folds[1 + i]
    assert (best[goal]["lanes"], best[goal]["rows"]) == (want["lanes"], want["rows"])
    assert best[goal]["keys_per_cycle"] == 1
    assert rows[0]["tokens_per_s"] is None and rows[0]["logic_cells"] == 6000
    # the CPU column: the design's tokens/s over one CPU thread's at the same d and N
    assert rows[0]["vs_cpu"] is None and rows[0]["cpu_tokens_per_s"] == 1000.0
    assert rows[1 + i]["vs_cpu"] == round(rows[1 + i]["tokens_per_s"] / 1000.0, 3)
    md = G.markdown(rows, best)
    assert md.count("**best**") == 1 and "6000/5280" in md and "| vs CPU |" in md
    assert f"| {rows[1 + i]['vs_cpu']:.2f}x |" in md


def test_no_fitting_candidate_gives_no_best(cand_dir):
    goal = "ulx3s-linear"
    fold = G.folds(goal)[0]
    (cand_dir / f"{G.candidate_name(goal, fold)}.json").write_text(
        json.dumps(_report(30000, 24288, None, error="does not fit")))
    rows, best = G.summarize([goal], key=_key_now)
    assert len(rows) == 1 and best[goal] is None and rows[0]["keys_per_cycle"] == 1


def test_a_build_of_other_rtl_is_stale_and_never_best(cand_dir):
    """A candidate built from other RTL or tools (its build key differs from the key of
    now) keeps its row, marked stale, and cannot be the best even when it is the fastest."""
    goal = "icebreaker-linear"
    a, b = G.folds(goal)[:2]
    (cand_dir / f"{G.candidate_name(goal, a)}.json").write_text(
        json.dumps(_report(4000, 5280, 90.0, key="before")))
    (cand_dir / f"{G.candidate_name(goal, b)}.json").write_text(
        json.dumps(_report(4000, 5280, 10.0)))
    rows, best = G.summarize([goal], key=_key_now)
    by = {r["rows"]: r for r in rows}
    assert by[a["rows"]]["current"] is False and by[b["rows"]]["current"] is True
    assert (best[goal]["lanes"], best[goal]["rows"]) == (b["lanes"], b["rows"])
    md = G.markdown(rows, best)
    assert md.count("**best**") == 1 and "stale (abc1234)" in md
    (cand_dir / f"{G.candidate_name(goal, b)}.json").unlink()
    assert G.summarize([goal], key=_key_now)[1][goal] is None


def test_build_key_follows_the_verilog_and_the_board():
    """The key changes with anything that changes the Verilog or the board, not otherwise."""
    cfg = CoreConfig.create(d=2, b=2, N=2)
    k = G.build_key(cfg, "icebreaker")
    assert k == G.build_key(CoreConfig.create(**cfg.params()), "icebreaker")
    assert k != G.build_key(cfg, "ulx3s")
    assert k != G.build_key(cfg.replace(N=3), "icebreaker")


def test_row_uses_the_timing_of_the_rtl_built():
    """A build records its config's timing; the row's cycles come from it (the RTL may
    have changed since), and from the current config only for older builds."""
    cfg = G.config_of("ulx3s-linear", {"lanes": 2, "rows": 32})
    rep = dict(_report(17647, 24288, 80.0),
               timing={"q_interval": {"fixed": 300, "per_key": 0},
                       "kv_interval": {"fixed": 100, "per_key": 0},
                       "latency": {"fixed": 5, "per_key": 1}})
    row = G.row_of("ulx3s-linear", "ulx3s", cfg, rep)
    assert (row["q_interval_full_window"], row["kv_interval"]) == (300, 100)
    assert row["latency_full_window"] == 5 + cfg.N and row["timing_from"] == "build"
    assert row["tokens_per_s"] == round(80e6 / 400, 1)
    old = G.row_of("ulx3s-linear", "ulx3s", cfg, _report(17647, 24288, 80.0))
    assert old["timing_from"] == "current config"
    assert old["q_interval_full_window"] == cfg.at(cfg.q_interval, cfg.N)
    # a stale build without its timing: no cycles and no throughput are made up
    stale = G.row_of("ulx3s-linear", "ulx3s", cfg, _report(17647, 24288, 80.0), current=False)
    assert stale["timing_from"] is None and stale["q_interval_full_window"] is None
    assert stale["tokens_per_s"] is None and stale["fmax_mhz"] == 80.0


def test_candidate_names_keep_those_of_before_the_search():
    assert G.candidate_name("ulx3s-topk", {"lanes": 8, "keys_per_cycle": 1}) == \
        "ulx3s-topk-P8"
    assert G.candidate_name("ulx3s-topk", {"lanes": 8, "keys_per_cycle": 4}) == \
        "ulx3s-topk-P8-M4"
    assert G.candidate_name("ulx3s-linear", {"lanes": 2, "rows": 64}) == "ulx3s-linear-P2"
    assert G.candidate_name("ulx3s-linear", {"lanes": 2, "rows": 32}) == \
        "ulx3s-linear-P2-T32"
    # every goal searches M where the mode has it, and hsoftmax on the ULX3S is a goal
    assert "ulx3s-hsoftmax" in G.GOALS
    for goal, (_, base, grid) in G.GOALS.items():
        assert ("keys_per_cycle" in grid) == (base["mode"] != "linear"), goal
        assert len({G.candidate_name(goal, f) for f in G.folds(goal)}) == len(G.folds(goal))
        for f in G.folds(goal):              # every candidate is a valid config
            cfg = G.config_of(goal, f)
            assert cfg.keys_per_cycle == f.get("keys_per_cycle", 1)
            assert G.cycles_per_token(cfg) > 0


TOY = "toy-linear"


@pytest.fixture
def toy_goal(monkeypatch):
    """A small linear goal: P in 1, 2 and T in 2, 4, 8 (d = 4, b = 8); its area grows with
    P and T, its cycles per token fall with them."""
    goals = dict(G.GOALS)
    goals[TOY] = ("icebreaker", dict(d=4, w=8, b=8, N=16, mode="linear"),
                  {"lanes": (1, 2), "rows": (2, 4, 8)})
    monkeypatch.setattr(G, "GOALS", goals)
    return TOY


def _toy_area(cfg):
    return 1000 * cfg.lanes + 100 * cfg.rows


def test_search_builds_only_promising_candidates(toy_goal):
    estimated, built, lines = [], [], []

    def estimate(cfg):
        estimated.append((cfg.lanes, cfg.rows))
        return _toy_area(cfg)

    def build(cfg, name):
        built.append((cfg.lanes, cfg.rows))
        used = round(_toy_area(cfg) * 1.2)       # the placed count runs 20 % over
        return _report(used, 1800, 50.0, None if used <= 1800 else "does not fit")

    cands = G.search(toy_goal, build, estimate, 1800, calibration=1.0, max_builds=3,
                     say=lines.append)
    cycles = [c.cycles for c in cands]
    assert cycles == sorted(cycles) and len(cands) == 6
    by = {(c.fold["lanes"], c.fold["rows"]): c for c in cands}
    # estimates from the smallest design up; P = 2, T = 2 (2,200) is predicted not to fit
    # 1,800 + 10 %, so P = 2 with T = 4 or 8 is never estimated
    assert estimated == [(1, 2), (1, 4), (2, 2), (1, 8)]
    assert "predicted 2,200 cells" in by[(2, 2)].decision
    for t in (4, 8):
        assert "no smaller than toy-linear-P2-T2" in by[(2, t)].decision
    # builds from the fewest cycles: P = 1, T = 8 (1,800 predicted, 2,160 placed) does not
    # fit; T = 4 (1,680 placed) fits; T = 2 needs 2x its cycles and is not built
    assert built == [(1, 8), (1, 4)]
    assert by[(1, 8)].decision == "built: does not fit"
    assert by[(1, 4)].decision == "built: fits"
    assert by[(1, 2)].decision.startswith("not built: over 1.5x the cycles")
    # no summary number comes from an estimate: the record keeps them apart
    rec = by[(1, 4)].record()
    assert (rec["estimate_cells"], rec["predicted_cells"]) == (1400, 1400)
    assert sum("building" in line for line in lines) == 2 and len(lines) == 6 + 5


def test_search_calibration_and_build_budget(toy_goal):
    """A calibration above 1 (placed runs over the estimate) rules out more candidates;
    ``max_builds`` caps the builds even when none fits."""
    built = []

    def build(cfg, name):
        built.append(name)
        return _report(5000, 1800, None, "does not fit")

    cands = G.search(toy_goal, build, _toy_area, 1800, calibration=1.5, max_builds=1,
                     say=lambda m: None)
    by = {(c.fold["lanes"], c.fold["rows"]): c for c in cands}
    # 1.5 x (1,000 + 100 T): only T = 2 (1,800) is within 1,980
    assert by[(1, 4)].predicted == 2100 and "predicted 2,100 cells" in by[(1, 4)].decision
    assert built == ["toy-linear-P1-T2"]
    assert G.search(toy_goal, build, _toy_area, 100, say=lambda m: None) and \
        built == ["toy-linear-P1-T2"]                 # nothing predicted to fit: no build


def test_calibration_ratio():
    assert G.calibration_ratio([(100, 120), (200, 260), (300, 330)]) == 1.2
    assert G.calibration_ratio([]) == 1.0


@pytest.mark.parametrize("d,N", sorted({(b["d"], b["N"]) for _, b, _ in G.GOALS.values()}))
def test_cpu_reference_at_the_goal_sizes(d, N):
    """Timed for real: one thread (threadpoolctl confirms it where installed), N queries
    over N keys, tokens/s = N / the best time."""
    info = G.cpu_tokens_per_s(d, N, repeats=3)
    assert info["seconds"] > 0 and info["tokens_per_s"] == round(N / info["seconds"], 1)
    for pool in info.get("threadpools", []):
        assert pool["num_threads"] == 1, pool


def test_unknown_goal_is_refused(capsys):
    assert G.main(["--only", "nosuchboard", "--summary-only"]) == 2
    assert "matches no goal" in capsys.readouterr().err
    assert G.main(["--max-builds", "0"]) == 2
    assert "--max-builds 0 is not allowed" in capsys.readouterr().err


def test_candidate_builds_that_one_without_search(cand_dir, tmp_path, monkeypatch, capsys):
    """``--candidate NAME`` builds exactly that candidate (no search, no estimate), keeps a
    JSON of the same build key with ``--reuse``, then rewrites the summary."""
    built = []

    def fake_build(goal, board_name, cfg, path, say):
        built.append((goal, board_name, cfg.params()))
        rep = _report(4000, 5280, 50.0)
        path.write_text(json.dumps(rep))
        return rep
    monkeypatch.setattr(G, "build_candidate", fake_build)
    monkeypatch.setattr(G, "run_search", lambda *a, **k: pytest.fail("searched"))
    monkeypatch.setattr(G, "RESULTS", tmp_path)
    monkeypatch.setattr(G, "cpu_tokens_per_s", lambda d, N: {"tokens_per_s": 1000.0})
    monkeypatch.setattr(G, "build_key", _key_now)
    assert G.main(["--candidate", "icebreaker-linear-P1-T8"]) == 0
    want = CoreConfig.create(**G.GOALS["icebreaker-linear"][1], lanes=1, rows=8).params()
    assert built == [("icebreaker-linear", "icebreaker", want)]
    doc = json.loads((tmp_path / "goals.json").read_text())
    assert doc["best"]["icebreaker-linear"]["rows"] == 8
    assert G.main(["--candidate", "icebreaker-linear-P1-T8", "--reuse"]) == 0
    assert len(built) == 1 and "icebreaker-linear-P1-T8: kept" in capsys.readouterr().err


def test_unknown_candidate_is_refused(capsys):
    assert G.main(["--candidate", "ulx3s-topk-P3"]) == 2
    err = capsys.readouterr().err
    assert "--candidate 'ulx3s-topk-P3' is not a candidate of the goals' grids" in err
    assert G.main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert "ulx3s-topk-P8-M10" in names and len(names) == len(set(names))
