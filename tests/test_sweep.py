"""hamattn sweep / report: grid parsing, parallel runs (process pool and Dask), cache reuse,
and a report whose figures hold exactly the sweep's numbers."""

import json
import subprocess
import sys

import pytest

from hamattn import ConfigError, CoreConfig
from hamattn.errors import UserError
from hamattn.synth.report import figures, write_report
from hamattn.synth.sweep import ROW_FIELDS, grid_configs, job_label, parse_grid, run_sweep

BASE = dict(d=1, w=2, b=2, N=2, mode="linear", k=None, g=12.0, smax=16, lanes=None,
            weights="random-ternary", seed=0)


def test_parse_grid_names_and_errors():
    assert parse_grid(["b=16,32", "head-dim=4", "mode=topk"]) == \
        {"b": ["16", "32"], "d": ["4"], "mode": ["topk"]}
    with pytest.raises(UserError, match=r"--grid 'b' is not allowed: PARAM=V1,V2"):
        parse_grid(["b"])
    with pytest.raises(UserError, match=r"--grid parameter 'colour' is not allowed"):
        parse_grid(["colour=red"])


def test_grid_configs_validate_every_point():
    cfgs = grid_configs(BASE, parse_grid(["b=1,3", "mode=linear,topk"]))
    assert [(c.b, c.mode) for c in cfgs] == [(1, "linear"), (1, "topk"), (3, "linear"),
                                              (3, "topk")]
    with pytest.raises(ConfigError, match=r"b \(--code-bits\) = 0 is not allowed"):
        grid_configs(BASE, parse_grid(["b=2,0"]))
    with pytest.raises(ConfigError, match=r"d \(--head-dim\) = 'x' is not allowed"):
        grid_configs(BASE, parse_grid(["d=x"]))
    # --rows is an integer grid parameter too (linear, folded)
    rows = grid_configs(dict(BASE, d=4, b=6, lanes=2), parse_grid(["rows=2,6"]))
    assert [(c.rows, c.row_blocks) for c in rows] == [(2, 3), (6, 1)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfgs = grid_configs(BASE, parse_grid(["b=1,2"]))
    rows, reps = run_sweep(cfgs, ["gates"], jobs=2, build_dir=out / "build", progress=False)
    return out, cfgs, rows, reps


def test_sweep_rows_are_reports(swept):
    out, cfgs, rows, reps = swept
    assert [r["error"] for r in rows] == [None, None]
    assert [r["b"] for r in rows] == [1, 2]
    for r, rep in zip(rows, reps):
        assert r["area"] == rep["design"]["area"] > 0
        assert r["baseline_area"] == rep["baseline"]["area"] > 0
        assert r["area_reduction"] == pytest.approx(1 - r["area"] / r["baseline_area"])


def test_sweep_rerun_reuses_the_cache(swept):
    out, cfgs, rows, _ = swept
    again, reps = run_sweep(cfgs, ["gates"], jobs=1, build_dir=out / "build",
                            progress=False)
    assert [r["area"] for r in again] == [r["area"] for r in rows]
    assert all(rep["design"].get("cached") for rep in reps), "second run must hit the cache"


def test_sweep_on_dask_local_cluster(swept):
    from distributed import LocalCluster     # lazy: Dask is slow to import
    out, cfgs, rows, _ = swept
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask_rows, _ = run_sweep(cfgs, ["gates"], scheduler=cluster.scheduler_address,
                                 build_dir=out / "build", progress=False)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in dask_rows] == strip


def test_report_figures_hold_the_numbers(swept, tmp_path):
    out, cfgs, rows, _ = swept
    md, plots = write_report(rows, {"grid": {"b": ["1", "2"]}, "targets": ["gates"]},
                             tmp_path)
    text = md.read_text()
    assert "## gates (area in transistors)" in text
    for r in rows:
        assert f"| linear | 1 | 2 | {r['b']} | 2 | - | 1 | {r['area']} |" in text
    figs = json.loads((tmp_path / "figures.json").read_text())
    assert figs == json.loads(json.dumps(figures(rows)))
    (series,) = [s for s in figs["area"] if s["axis"] == "b"]
    assert series["x"] == [1, 2] and series["area"] == [r["area"] for r in rows]
    assert {p.name for p in plots} >= {"area_vs_b.png", "reduction.png"}
    assert (tmp_path / "figures.csv").read_text().count("area_vs_b") == 2


def test_report_tells_the_trees_apart(swept, tmp_path):
    """A sweep over --adders (or --popcount) gives rows that differ only in the tree: the
    tables get a column for it, and the plots one series per tree."""
    out, cfgs, rows, _ = swept
    assert all(r["adders"] == "sum" and r["popcount"] == "lut6" for r in rows)
    heap = [dict(r, adders="lut6", area=r["area"] + 1) for r in rows]
    md, _ = write_report(rows + heap, {"grid": {"b": ["1", "2"], "adders": ["sum", "lut6"]},
                                       "targets": ["gates"]}, tmp_path)
    text = md.read_text()
    assert "| lanes | adders | area |" in text and "| lanes | popcount |" not in text
    for r in rows + heap:
        assert f"| {r['b']} | 2 | - | 1 | {r['adders']} | {r['area']} |" in text
    figs = figures(rows + heap)
    series = [s for s in figs["area"] if s["axis"] == "b"]
    assert sorted(s["fixed"]["adders"] for s in series) == ["lut6", "sum"]
    assert all(s["x"] == [1, 2] for s in series)
    assert len({f["label"] for f in figs["reduction"]}) == 4
    # the CSV of a sweep carries the trees too
    assert {"popcount", "adders", "keys_per_cycle"} <= set(ROW_FIELDS)


def test_report_cli_missing_results(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hamattn.cli", "report",
                        str(tmp_path / "none"), "-o", str(tmp_path / "rep")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "results.json' not found: run `hamattn sweep" in r.stderr


def test_job_label_names_M_where_it_is_not_1():
    three = CoreConfig.create(mode="topk", keys_per_cycle=3).params()
    assert job_label(three, "gates") == "topk d=16 b=16 N=64 k=8 M=3 on gates"
    one = CoreConfig.create(mode="topk").params()
    assert "M=" not in job_label(one, "gates")
