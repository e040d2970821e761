"""The Fmax bench (issue 17) with fake builds: which runs are built or kept, the median and
its critical path, the summary row and the docs table; no tool runs here."""

import json

import pytest

from hamattn.bench import fmax as F
from hamattn.ci import docs_tables

POINT = F.Point("tiny-topk", "synth", "ice40-up5k", dict(d=4, b=8, N=16, mode="topk"))
BIG = F.Point("tiny-linear", "board", "icebreaker", dict(d=4, b=8, N=16, mode="linear",
                                                       lanes=1, rows=4))


def _path(name, delay):
    return {"from": f"{name}_LC", "to": "x_LC", "delay_ns": delay, "clock": "clk",
            "from_net": f"dut.{name}", "to_net": "dut.x"}


class FakeBuild:
    """Fmax per (point, seed); records what was built."""

    def __init__(self, fmax, fits=True):
        self.fmax, self.fits, self.built = fmax, fits, []

    def __call__(self, point, seed, say):
        self.built.append((point.name, seed))
        f = self.fmax[seed]
        return {"fits": self.fits, "fmax_mhz": f if self.fits else None,
                "critical_path": _path(f"p{seed}", round(1000 / f, 3)) if self.fits else None,
                "top_paths": [{"from": f"p{seed}_{i}", "to": "x"} for i in range(8)]
                if self.fits else None,
                "area": 1000, "area_available": 5280, "area_unit": "ICESTORM_LC", "bram": 2,
                "error": None if self.fits else "does not fit", "tools": {}}


def test_runs_are_built_once_and_kept_by_key(tmp_path):
    build = FakeBuild({1: 50.0, 2: 70.0, 3: 60.0})
    key = lambda p, s: f"k{s}"                                  # noqa: E731
    said = []
    runs = F.run_points([POINT], [1, 2, 3], run_dir=tmp_path, build=build, key=key,
                        say=said.append)
    assert build.built == [("tiny-topk", 1), ("tiny-topk", 2), ("tiny-topk", 3)]
    assert [r["seed"] for r in runs["tiny-topk"]] == [1, 2, 3]
    assert said[0] == "[1/3] tiny-topk seed 1: building (synth flow, ice40-up5k)"
    assert json.loads((tmp_path / "tiny-topk-s2.json").read_text())["fmax_mhz"] == 70.0
    # a second run keeps every build whose key is unchanged, rebuilds the others
    build.built.clear()
    key2 = lambda p, s: "new" if s == 3 else f"k{s}"            # noqa: E731
    F.run_points([POINT], [1, 2, 3], run_dir=tmp_path, build=build, key=key2, say=said.append)
    assert build.built == [("tiny-topk", 3)]
    assert "[1/3] tiny-topk seed 1: kept (Fmax 50.0 MHz)" in said
    build.built.clear()
    F.run_points([POINT], [1], run_dir=tmp_path, build=build, key=key2, say=said.append,
                 rebuild=True)
    assert build.built == [("tiny-topk", 1)]


def test_a_point_that_does_not_fit_is_built_once(tmp_path):
    build = FakeBuild({1: 0, 2: 0}, fits=False)
    runs = F.run_points([BIG], [1, 2], run_dir=tmp_path, build=build,
                        key=lambda p, s: "k", say=lambda m: None)
    assert build.built == [("tiny-linear", 1)]
    row = F.summarize(BIG, runs["tiny-linear"], 228.0)
    assert not row["fits"] and row["median_fmax_mhz"] is None and row["goal_met"] is None


def test_median_and_its_critical_path():
    runs = [dict(FakeBuild({s: f})(POINT, s, None), seed=s, commit="abc")
            for s, f in ((1, 50.0), (2, 70.0), (3, 60.0))]
    row = F.summarize(POINT, runs, 200.0)
    assert row["seeds"] == [1, 2, 3] and row["fmax_mhz_by_seed"] == [50.0, 70.0, 60.0]
    assert row["median_fmax_mhz"] == 60.0 and row["fraction_of_ceiling"] == 0.3
    assert row["goal_met"] is True
    assert row["critical_path"]["from_net"] == "dut.p3" and row["critical_path_seed"] == 3
    assert [p["from"] for p in row["top_paths"]] == [f"p3_{i}" for i in range(F.SUMMARY_PATHS)]
    cfg = POINT.config()
    qi, kv = cfg.at(cfg.q_interval, cfg.N), cfg.at(cfg.kv_interval, 0)
    assert row["tokens_per_s"] == round(60e6 / (qi + kv), 1)
    # two seeds: the median is their mean, the path the lower one's
    row = F.summarize(POINT, runs[:2], 200.0)
    assert row["median_fmax_mhz"] == 60.0 and row["critical_path_seed"] == 1
    assert row["goal_met"] is True
    row = F.summarize(POINT, runs[:1], 200.0)
    assert row["median_fmax_mhz"] == 50.0 and row["goal_met"] is False
    assert F.median_run([]) is None


def test_table_from_the_summary(tmp_path):
    runs = [dict(FakeBuild({s: f})(POINT, s, None), seed=s, commit="abc")
            for s, f in ((1, 50.0), (2, 70.0), (3, 60.0))]
    rows = [F.summarize(POINT, runs, 228.0)]
    (tmp_path / "bench" / "results").mkdir(parents=True)
    F.write_summary(rows, [1, 2, 3], {"yosys": "Yosys 0.70 (git)"},
                    path=tmp_path / "bench" / "results" / "fmax.json")
    lines = docs_tables.fmax(tmp_path)
    assert lines[0].startswith("| point | device | config | flow | logic cells |")
    assert lines[2] == ("| tiny-topk | ice40-up5k | `topk` d=4 b=8 N=16 | synth | 1,000 / 5,280 | "
                        "50.0, 70.0, 60.0 (seeds 1, 2, 3) | 60.0 | 228 | 26 % | no | "
                        "`dut.p3` → `dut.x` (16.7 ns) |")
    assert "make bench-fmax" in lines[-1] and "RTL commit abc" in lines[-1]


def test_point_selection():
    assert F.select([]) == F.POINTS
    assert {p.name for p in F.select(["up5k"])} == {
        "default-topk-up5k", "default-topk-P4-up5k", "default-hsoftmax-P4-up5k"}
    with pytest.raises(ValueError, match="--only 'nope' matches no point: one of default"):
        F.select(["nope"])
    assert F.main(["--only", "nope"]) == 2
    assert F.POINTS[3].target == "ice40-up5k"            # a board point: its fabric's target
    for p in F.POINTS:
        p.config()                                        # every point is a valid config


def test_a_tool_failure_is_a_run_that_does_not_fit(monkeypatch):
    """nextpnr's "Unable to find legal placement" on a design that packs: the synth flow
    raises SynthError; the bench records the point as not fitting, with the tool's words,
    instead of stopping with a traceback."""
    from hamattn.synth import cli as synth_cli
    from hamattn.synth.flows import SynthError

    def failing(*a, **k):
        raise SynthError("place and route of design on ice40-up5k failed: ERROR: Unable to "
                         "find legal placement for all cells")

    monkeypatch.setattr(synth_cli, "synth_config", failing)
    run = F.build_point(POINT, 1, lambda m: None)
    assert run["fits"] is False and run["fmax_mhz"] is None
    assert "Unable to find legal placement" in run["error"]


def test_command_line_errors_name_the_command(capsys):
    assert F.main(["--only", "nosuchpoint"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m hamattn.bench.fmax: error: --only 'nosuchpoint' matches "
                          "no point: one of ")
    assert F.main(["--seeds", "-1"]) == 2
    assert capsys.readouterr().err == ("python -m hamattn.bench.fmax: error: --seeds [-1] is "
                                       "not allowed: integers >= 0\n")
