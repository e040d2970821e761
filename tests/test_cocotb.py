"""The generated Verilog under cocotb (Verilator, and Icarus where installed) against the
golden model: every scenario of :mod:`hamattn.verif.cocotb_tb`.

``make test`` runs a representative subset: the default config in each mode (several
scenarios in one simulation per build), a corner config, overflow and reset, the bench's
its two clockings and fast-forward against each other, build reuse, waves, the ``hamattn sim``
command, a deliberately corrupted beat, and Icarus. ``make sweep`` (``-m slow -k sweep``)
runs the named corners, ``make soak`` (``-k soak``) the long soaks.

The stimulus seed is ``HAMATTN_TEST_SEED`` (default 1; ``random`` draws one); every test
prints it, and a failure message holds the command that replays the failing run. Builds go
to ``~/.cache/hamattn/sim`` (``HAMATTN_BUILD_DIR`` moves them), one folder per simulator,
options and Verilog hash, and are reused while the Verilog is unchanged.
"""

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from hamattn import verif
from hamattn.cli import main
from hamattn.config import CoreConfig
from hamattn.verif.corners import CORNER, CORNER_W16, in_quick_suite
from hamattn.verif.simulate import format_result, run_sim, simulator_available

# builds are cached per Verilog hash outside the work tree, so that a fresh clone on the
# same machine (CI) reuses them; HAMATTN_BUILD_DIR overrides
_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hamattn"
os.environ.setdefault("HAMATTN_BUILD_DIR", str(_cache))

_seed_env = os.environ.get("HAMATTN_TEST_SEED", "1")
SEED = random.randrange(2**31) if _seed_env == "random" else int(_seed_env)


def need(sim):
    why = simulator_available(sim)
    if why:
        pytest.skip(f"{sim} unavailable: {why}")


def simulate(cfg, *, expect_pass=True, **kw):
    """run_sim with the suite's seed; print the result; on failure show what failed and the
    replay command."""
    kw.setdefault("seed", SEED)
    need(kw.get("sim", "verilator"))
    res = run_sim(cfg, **kw)
    print(f"\n{cfg!r}\n{format_result(res)}")
    if expect_pass:
        assert res["passed"], (
            "simulation failed: " + "; ".join(f"{k}: {v}" for k, v in res["errors"].items())
            + f"\nreplay: {res['replay']}\nlog: {res['log']}")
    return res


# ------------------------------------------------------------------- make test

# mode -> the scenarios run in its one simulation (each build amortised over several)
MODE_SCENARIOS = {
    "linear": "full,random,overflow,extreme",
    "topk": "full,random,single,back_to_back",
    "hsoftmax": "full,random,reset,extreme",
}


@pytest.mark.parametrize("mode", list(MODE_SCENARIOS))
def test_default_config(mode):
    """The default config of each mode: full throughput (cycle-exact latency and query
    interval) and random valid/ready on all three channels, plus two more scenarios."""
    res = simulate(CoreConfig.create(mode=mode), scenario=MODE_SCENARIOS[mode], windows=6)
    assert res["cycles"] > 0


@pytest.mark.slow      # make sweep: the heap trees' Verilog is proven against the plain sum
def test_linear_config_with_heap_adders():      # by Yosys (test_popcount), per emitter
    """A linear core with --adders lut6 (the hash rows and every read-out tree as bit
    heaps): the generated Verilog in Verilator, full throughput, random handshakes and
    extreme values, against the golden model."""
    cfg = CoreConfig.create(d=4, w=8, b=12, N=6, mode="linear", adders="lut6")
    res = simulate(cfg, scenario="full,random,extreme", windows=4)
    assert res["cycles"] > 0


# folded (issue 8): one config per mode with lanes a non-divisor of d, 1, and a divisor;
# the scan modes with M keys per cycle (issue 16) that divide neither N nor most n
FOLDED = {"linear": dict(d=6, w=8, b=12, N=10, lanes=4),
          "topk": dict(d=6, w=8, b=12, N=10, k=3, lanes=1, keys_per_cycle=3),
          "hsoftmax": dict(d=6, w=8, b=12, N=10, lanes=3, keys_per_cycle=4)}


# topk's two selections (issue 16), chosen by the plan (ScanPlan.cheaper_selection): the
# streaming one (unfolded, M·k <= 32; the default config and the corners with small k are
# M = 1) at M = 2, an M dividing neither N nor most n and M = N, and the histogram one
# unfolded (M·k > 32; folded it is FOLDED["topk"] and the corners with lanes)
SELECTIONS = {"stream-M2": dict(d=4, w=6, b=12, N=8, k=3, keys_per_cycle=2),
              "stream-M4-N11": dict(d=4, w=6, b=12, N=11, k=4, keys_per_cycle=4),
              "stream-MN": dict(d=3, w=6, b=9, N=5, k=5, keys_per_cycle=5),
              "histogram-M4-N11": dict(d=4, w=6, b=12, N=11, k=9, keys_per_cycle=4)}


#: make test runs the histogram and the stream at M = N; make sweep the other two
QUICK_SELECTIONS = ("stream-MN", "histogram-M4-N11")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=() if n in QUICK_SELECTIONS else pytest.mark.slow) for n in SELECTIONS])
def test_topk_selection(name):
    """Each topk selection on the generated Verilog: the same bits as the golden model
    (ties to the lower index), cycle-exact latency and intervals of the manifest, random
    handshakes, overflow and reset."""
    cfg = CoreConfig.create(mode="topk", **SELECTIONS[name])
    assert cfg.plan.value.selection == name.split("-")[0]
    simulate(cfg, scenario="full,random,overflow,reset", windows=6)


# and linear folding its rows too (--rows, a non-divisor of b)
FOLDED["linear-rows"] = dict(d=6, w=8, b=12, N=10, lanes=2, rows=5, mode="linear")


@pytest.mark.parametrize("name", list(FOLDED))
def test_folded_config(name):
    """Folded cores (lanes < d; topk and hsoftmax also with M > 1 keys per cycle): the same
    bits as the golden model, cycle-exact latency and intervals of the manifest, random
    handshakes, overflow and reset."""
    simulate(CoreConfig.create(**{"mode": name, **FOLDED[name]}),
             scenario="full,random,overflow,reset", windows=6)


# one window of real activations (issue 7): all-MiniLM-L6-v2 layer 1 head 7, the hash that
# bench-fidelity fits at b = 64 (ranking-w8), int8 Q, K, V of its first evaluation window;
# written by `python -m hamattn.bench.fidelity_window`
DATA = Path(verif.__file__).parent / "data"


#: queries of the real window that the Verilog runs (all its keys and values are stored):
#: every query is computed alone from the same stored window, so a slice checks the same
#: arithmetic as the whole window in a tenth of the simulated cycles
REAL_QUERIES = 12


def test_real_minilm_window(tmp_path):
    """A real window through the generated Verilog: every output beat equals the golden
    model's (the outputs behind bench-fidelity's numbers), bit for bit, at full throughput
    (cycle-exact timing) and with random handshakes; all 128 keys and values, the first
    REAL_QUERIES queries; folded (lanes 2) to keep the build short, which changes no bit
    (lanes 2 costs 47 s of CPU here against 66 s with lanes 8: a smaller model to compile,
    and fewer signals to step in each of the more cycles)."""
    with np.load(DATA / "minilm_window.npz") as z:
        layer, head, b, smax = (int(z[k]) for k in ("layer", "head", "b", "smax"))
        n, d = z["keys"].shape[1:]
        window = {k: z[k] for k in ("keys", "values")}
        window["queries"] = z["queries"][:, :REAL_QUERIES]
    np.savez(tmp_path / "window.npz", **window)
    cfg = CoreConfig.create(d=d, w=8, b=b, N=n, mode="hsoftmax", smax=smax, lanes=2,
                            weights=str(DATA / f"minilm_l{layer}h{head}_b{b}.npz"))
    res = simulate(cfg, scenario="data", windows=1,
                   extra_env={"HAMATTN_DATA": str(tmp_path / "window.npz")})
    assert res["cycles"] > 2 * n


def test_corner_config(cocotb_corner):
    simulate(CoreConfig.create(**cocotb_corner), scenario="all", windows=6)


def test_linear_reset_and_overflow_small():
    """Reset mid-window and over-long windows on a small linear core with N > 1."""
    simulate(CoreConfig.create(d=4, w=8, b=13, N=6), scenario="overflow,reset,single",
             windows=8)


def test_clocking_and_fast_forward_are_cycle_exact():
    """The bench's two clockings (``pulse``: one wake-up per cycle; ``gpi``: a free-running
    clock) and its fast-forward over idle cycles change nothing: the same transfers on the
    same cycles (digest of every observation) for full throughput, random valid/ready,
    over-long windows and resets."""
    cfg = CoreConfig.create(**CORNER_W16)
    kw = dict(scenario="full,random,reset,overflow", windows=6)
    runs = [simulate(cfg, **kw), simulate(cfg, clocking="gpi", **kw),
            simulate(cfg, clocking="gpi", fast=False, **kw)]
    for name, s in runs[0]["scenarios"].items():
        assert len({r["scenarios"][name]["digest"] for r in runs}) == 1, name
        assert len({r["scenarios"][name]["cycles"] for r in runs}) == 1, name
    assert sum(s["skipped"] for s in runs[1]["scenarios"].values()) > 0
    assert sum(s["skipped"] for s in runs[2]["scenarios"].values()) == 0


def test_build_is_reused():
    """A second run of the same Verilog neither rebuilds nor rewrites the Verilog file."""
    cfg = CoreConfig.create(**CORNER)
    first = simulate(cfg, scenario="full", windows=2)
    vfile = Path(first["build_dir"]) / "hamattn_core.v"
    mtime = vfile.stat().st_mtime
    res = simulate(cfg, scenario="single", windows=2)
    assert res["build_dir"] == first["build_dir"]
    assert not res["built"] and res["build_s"] == 0.0
    assert vfile.stat().st_mtime == mtime
    assert (Path(res["build_dir"]) / ".hamattn-build.json").exists()


def test_corrupted_beat_fails_with_replay_command(capsys):
    """The checks catch a wrong output beat, and the result says how to replay the run."""
    cfg = CoreConfig.create(**CORNER)
    res = simulate(cfg, scenario="full,random", windows=2, expect_pass=False,
                   extra_env={"HAMATTN_MUTATE": "1"})
    assert not res["passed"]
    assert set(res["errors"]) == {"full", "random"}
    assert "output beat" in res["errors"]["full"]
    assert "-m hamattn.verif.simulate" in res["replay"]
    assert f"--sim-seed {SEED}" in res["replay"] and "--scenario full,random" in res["replay"]
    assert "--code-bits 70" in res["replay"] and "--seq-len 1" in res["replay"]


def test_hamattn_sim_cli(capsys):
    """``hamattn sim``: PASS line with seed, cycles and cycles/s, exit 0; --waves gives an
    FST."""
    need("verilator")
    flags = ["--head-dim", "1", "--width", "2", "--code-bits", "70", "--seq-len", "1",
             "--mode", "topk", "--topk", "1", "--sim-seed", str(SEED), "--windows", "2"]
    assert main(["sim", *flags]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS  verilator") == 1 and f"seed {SEED}" in out
    assert "simulated cycles/s" in out
    waves_dir = Path(os.environ["HAMATTN_BUILD_DIR"]) / "sim" / "cli-waves-test"
    assert main(["sim", *flags, "--waves", "--build-dir", str(waves_dir)]) == 0
    out = capsys.readouterr().out
    fst = out.split("waves: ", 1)[1].split()[0]
    assert fst.endswith((".fst", ".vcd")) and Path(fst).stat().st_size > 0
    assert Path(fst).is_relative_to(waves_dir.resolve())


# Icarus in both language modes (SPEC §4: the Verilog behaves the same under Verilog-2005
# and SystemVerilog semantics), every mode, one of them folded; reset and overflow included
# (after reset no ready or output may read X: the bench fails on X)
ICARUS_CASES = {
    "linear": dict(d=4, w=8, b=13, N=6, mode="linear", lanes=2),
    "topk": dict(d=3, w=6, b=9, N=5, mode="topk", k=2, keys_per_cycle=2),
    "hsoftmax": dict(d=4, w=8, b=13, N=6, mode="hsoftmax"),
}


# make test: each mode in one language mode, alternating (hsoftmax in 2012 with waves);
# make sweep: the other one too
@pytest.mark.parametrize("mode,std", [
    pytest.param(m, std, id=f"{m}-{std}",
                 marks=() if in_quick_suite(i, j, 1) else pytest.mark.slow)
    for i, m in enumerate(sorted(ICARUS_CASES)) for j, std in enumerate(("2005", "2012"))])
def test_icarus(mode, std):
    need("icarus")
    waves = mode == "hsoftmax" and std == "2012"
    res = simulate(CoreConfig.create(**ICARUS_CASES[mode]), sim="icarus", icarus_std=std,
                   scenario="full,random,reset,overflow", windows=4, waves=waves)
    assert res["passed"]
    if waves:
        assert res["waves_path"] and Path(res["waves_path"]).stat().st_size > 0


def test_icarus_missing_is_reported(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert "iverilog" in simulator_available("icarus")


# ------------------------------------------------------------------- make sweep / soak

@pytest.mark.slow
def test_sweep_corner(sweep_corner):
    simulate(CoreConfig.create(**sweep_corner), scenario="all", windows=8)


SOAK = {
    "linear": dict(d=4, w=6, b=12, N=8, mode="linear"),
    "topk": dict(d=4, w=6, b=12, N=8, mode="topk", k=3),
    "hsoftmax": dict(d=4, w=6, b=12, N=8, mode="hsoftmax"),
    # M keys per cycle, folded (issue 16)
    "topk-M3": dict(d=4, w=6, b=12, N=8, mode="topk", k=3, lanes=3, keys_per_cycle=3),
    "hsoftmax-M8": dict(d=4, w=6, b=12, N=8, mode="hsoftmax", lanes=2, keys_per_cycle=8),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(SOAK))
def test_soak(mode):
    """>= 100,000 query beats over many windows (random valid/ready, over-long windows,
    every fourth chunk at full throughput with the timing checked)."""
    res = simulate(CoreConfig.create(**SOAK[mode]), scenario="soak", windows=50,
                   soak_queries=100_000, opt="-O2", progress=print)
    assert res["cycles"] > 100_000
