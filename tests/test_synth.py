"""Tests of the synthesis flows (hamattn.synth) on a tiny Amaranth design.

Every tool run here takes seconds; the whole file runs in well under a minute once the
YoWASP tools are compiled (their first use on a machine adds up to two minutes).
"""

import json
import pathlib

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hamattn.config import CoreConfig
from hamattn.synth import breakdown as bd
from hamattn.synth import flows, harness, nextpnr
from hamattn.synth.cache import cache_key
from hamattn.synth.cli import format_report, synth_config
from hamattn.synth.tools import ToolError

TOP = "tiny_adder"


class _Mix(wiring.Component):
    x: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.y.eq(self.x ^ (self.x >> 1))
        return m


class _Mul16(wiring.Component):
    """A registered 16x16 multiplier: ~700 iCE40 logic cells, too many for an LP384."""
    a: In(16)
    b: In(16)
    o: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o.eq(self.a * self.b)
        return m


class _TinyAdder(wiring.Component):
    """A registered 8-bit adder with one submodule (for the per-module breakdown)."""
    a: In(8)
    b: In(8)
    o: Out(9)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mix = mix = _Mix()
        m.d.comb += mix.x.eq(self.a)
        m.d.sync += self.o.eq(mix.y + self.b)
        return m


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    vpath = root / f"{TOP}.v"
    vpath.write_text(verilog.convert(_TinyAdder(), name=TOP, emit_src=False))
    return {"v": vpath, "build": root / "build", "cache": root / "cache"}


def _synth(work, target, **kw):
    return flows.synthesize(work["v"], TOP, target, work["build"], cache_dir=work["cache"], **kw)


# --------------------------------------------------------------------------- pure functions

def test_cell_counts_exclude_scopeinfo():
    stat = {"modules": {"\\m": {"num_cells_by_type": {"$scopeinfo": 3, "LUT2": 4}}},
            "design": {"num_cells_by_type": {"$scopeinfo": 3, "LUT2": 4, "FDRE": 2}}}
    assert flows.cell_counts(stat) == {"LUT2": 4, "FDRE": 2}
    assert flows.cell_counts(stat, "m") == {"LUT2": 4}


def test_classify_cells_per_target():
    xc7 = flows.classify_cells({"LUT1": 1, "LUT6": 2, "FDRE": 3, "FDSE": 1, "CARRY4": 1,
                                "SRL16E": 2}, "xc7")
    assert (xc7["luts"], xc7["ffs"], xc7["area"]) == (3, 4, 5)
    gates = flows.classify_cells({"$_NAND_": 2, "$_NOT_": 1, "$_DFF_P_": 1}, "gates")
    assert (gates["area"], gates["ffs"]) == (2 * 4 + 2 + 16, 1)
    assert "unknown" in flows.classify_cells({"$_FOO_": 1}, "gates")
    ecp5 = flows.classify_cells({"LUT4": 5, "CCU2C": 2, "TRELLIS_FF": 7}, "ecp5-25k")
    assert (ecp5["area"], ecp5["ffs"]) == (9, 7)


class _MemToy(wiring.Component):
    """Only a memory: 20 words of 12 bits, one write port, one synchronous read port."""
    waddr: In(5)
    wdata: In(12)
    we: In(1)
    raddr: In(5)
    rdata: Out(12)

    def __init__(self, one_address=False):
        self.one_address = one_address       # both ports on waddr (raddr unused)
        super().__init__()

    def elaborate(self, platform):
        from amaranth.lib import memory
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=12, depth=20, init=[])
        w, r = mem.write_port(), mem.read_port(transparent_for=())
        m.d.comb += [w.addr.eq(self.waddr), w.data.eq(self.wdata), w.en.eq(self.we),
                     r.addr.eq(self.waddr if self.one_address else self.raddr),
                     self.rdata.eq(r.data)]
        return m


def test_memory_transistors_formula():
    """6 per bit, 2 per bit per further port, a decoder per port, sense/precharge and the
    output register per read port, a driver per write port (documented constants)."""
    words, width, abits = 20, 12, 5
    bits = words * width
    want = (6 * bits + 2 * bits                       # 1R1W: the 8T cell
            + 2 * (words * (2 * abits + 2) + 2 * abits)   # two decoders
            + width * (9 + 16)                        # one clocked read port
            + width * 6)                              # one write port
    assert flows.memory_transistors(words, width, 1, 1) == want == 2792
    assert flows.memory_transistors(64, 128, 1, 1) == 71320     # docs/synthesis.md's example
    # a ROM with an asynchronous read port: one port, no register
    assert flows.memory_transistors(16, 4, 1, 0, 0) == 6 * 64 + 16 * 10 + 8 + 4 * 9
    dump = ("module \\top\n  cell $mem_v2 \\m\n    parameter \\MEMID \"\\\\m\"\n"
            "    parameter \\WIDTH 12\n    parameter \\SIZE 20\n"
            "    parameter \\RD_PORTS 2\n    parameter \\RD_CLK_ENABLE 2'01\n"
            "    parameter \\WR_PORTS 1\n    parameter \\INIT 240'0\n  end\nend\n")
    (mem,) = flows.parse_memories(dump)["top"]
    assert (mem["words"], mem["width"], mem["bits"], mem["read_ports"],
            mem["clocked_read_ports"], mem["write_ports"]) == (20, 12, 240, 2, 1, 1)
    assert mem["transistors"] == flows.memory_transistors(20, 12, 2, 1, 1)


def test_one_address_memory_is_one_port():
    """A read and a write port on one address signal cost one read/write port (the 6T
    cell, one decoder), keeping the read port's sensing and register and the write
    drivers; a constant address, different signals or more ports keep the ports apart."""
    words, width, abits = 20, 12, 5
    bits = words * width
    want = (6 * bits + (words * (2 * abits + 2) + 2 * abits) + width * (9 + 16) + width * 6)
    assert flows.memory_transistors(words, width, 1, 1, 1, 1) == want
    assert flows.memory_transistors(words, width, 1, 1) - want == 2 * bits + (
        words * (2 * abits + 2) + 2 * abits)
    with pytest.raises(ValueError, match="shared_ports = 2 is not allowed: 0 .. "):
        flows.memory_transistors(words, width, 1, 1, 1, 2)

    def dump(rd_addr, wr_addr, rd=1):
        return ("module \\top\n  cell $mem_v2 \\m\n    parameter \\WIDTH 12\n"
                "    parameter \\SIZE 20\n"
                f"    parameter \\RD_PORTS {rd}\n    parameter \\RD_CLK_ENABLE {rd}'{'1' * rd}\n"
                "    parameter \\WR_PORTS 1\n    connect \\RD_CLK \\clk\n"
                f"    connect \\RD_ADDR {rd_addr}\n    connect \\WR_ADDR {wr_addr}\n"
                "  end\nend\n")

    def shared(*args, **kw):
        (mem,) = flows.parse_memories(dump(*args, **kw))["top"]
        assert mem["transistors"] == flows.memory_transistors(
            20, 12, mem["read_ports"], 1, mem["read_ports"], mem["shared_ports"])
        return mem["shared_ports"]

    assert shared("\\a [4:0]", "\\a [4:0]") == 1
    assert shared("$auto$x$1", "$auto$x$1") == 1
    assert shared("\\a [4:0]", "\\b [4:0]") == 0
    assert shared("\\a [4:0]", "{ \\a [4:1] 1'0 }") == 0
    assert shared("5'00000", "5'00000") == 0
    assert shared("{ \\a [4:0] \\a [4:0] }", "\\a [4:0]", rd=2) == 0


def test_gates_counts_a_memory_as_sram(tmp_path):
    """A memory-only design costs exactly the SRAM formula on gates: no flip-flops, no
    logic; its bits are reported beside the transistors."""
    vpath = tmp_path / "memtoy.v"
    vpath.write_text(verilog.convert(_MemToy(), name="memtoy", emit_src=False))
    r = flows.synthesize(vpath, "memtoy", "gates", tmp_path / "build", cache_dir=False)
    assert r["ffs"] == 0 and r["logic_transistors"] == 0
    assert r["memory_bits"] == 240
    assert r["area"] == r["memory_transistors"] == flows.memory_transistors(20, 12, 1, 1)
    assert r["synth"]["memories"][0]["shared_ports"] == 0
    # both ports on one address: one read/write port
    vpath.write_text(verilog.convert(_MemToy(True), name="memtoy", emit_src=False))
    r1 = flows.synthesize(vpath, "memtoy", "gates", tmp_path / "build1", cache_dir=False)
    assert r1["synth"]["memories"][0]["shared_ports"] == 1
    assert r1["area"] == r1["memory_transistors"] == flows.memory_transistors(20, 12, 1, 1,
                                                                             1, 1)
    # on a target with memory mapping the same design is not costed as an SRAM
    assert flows.classify_cells({"$mem_v2": 1}, "gates")["unknown"] == {"$mem_v2": 1}


def test_core_memories_follow_N_on_gates(tmp_path):
    """The topk core's key-code and value memories grow with N as the SRAM formula says:
    N words of b and d·w bits; the bits and transistors of N = 8 minus N = 4. (The
    histogram and the kept list grow too, by a bit of their counts and addresses.)"""
    from hamattn.config import CoreConfig
    from hamattn.synth.cli import synth_config
    reps = {}
    d, w, b = 1, 3, 2
    for N in (4, 8):
        cfg = CoreConfig.create(d=d, b=b, N=N, w=w, mode="topk", k=1)
        full = synth_config(cfg, "gates", build_dir=tmp_path / "b", baseline=N == 8,
                            cache_dir=False)
        reps[N] = full["design"]
    # the softmax baseline's key and value memories have one address each as well (the
    # same rule on both sides); its exponent table (a ROM) has no write port
    assert {m["name"]: m["shared_ports"] for m in full["baseline"]["synth"]["memories"]} \
        == {"keys": 1, "values": 1, "exp_lut": 0}

    def store(rep):          # the code and value memories: name -> (words, width, bits, T)
        return {m["name"].rsplit(".", 1)[1]: (m["words"], m["width"], m["bits"],
                                              m["transistors"], m["shared_ports"])
                for m in rep["synth"]["memories"]
                if m["name"].rsplit(".", 1)[1] in ("codes", "values")}

    s4, s8 = store(reps[4]), store(reps[8])
    assert {k: v[:2] for k, v in s8.items()} == {"codes": (8, b), "values": (8, d * w)}
    assert sum(v[2] for v in s8.values()) - sum(v[2] for v in s4.values()) == 4 * (d * w + b)
    # the value and code memories have one address each (read and write ports on one
    # signal: 1RW; keys are written only while no pass reads)
    assert {k: v[4] for k, v in s8.items()} == {"codes": 1, "values": 1}
    want = sum(flows.memory_transistors(8, width, 1, 1, 1, 1)
               - flows.memory_transistors(4, width, 1, 1, 1, 1) for width in (d * w, b))
    assert sum(v[3] for v in s8.values()) - sum(v[3] for v in s4.values()) == want
    assert want > 6 * 4 * (d * w + b)
    for N, rep in reps.items():
        assert rep["area"] == rep["memory_transistors"] + rep["logic_transistors"]
        assert rep["memory_bits"] == sum(m["bits"] for m in rep["synth"]["memories"])
        assert rep["memory_transistors"] == sum(m["transistors"]
                                                for m in rep["synth"]["memories"])


def test_harness_verilog_covers_every_port():
    ports = [harness.Port("clk", "input", 1), harness.Port("a", "input", 5),
             harness.Port("rst", "input", 1), harness.Port("q", "output", 7)]
    text = harness.harness_verilog("dut_top", ports)
    assert "reg [5:0] sr;" in text                 # a (5) + rst (1); clk takes the clock
    assert ".clk(clk)" in text and ".a(sr[4:0])" in text and ".rst(sr[5:5])" in text
    assert ".q(y[6:0])" in text
    assert "xr1" in text and "xr2" in text          # 7 -> 2 -> 1 registered XOR levels
    stub = harness.stub_verilog("dut_top", ports)
    assert "assign q = 7'b0;" in stub


def test_packed_utilization_from_log(tmp_path):
    # rows as nextpnr-ice40 --pack-only logs them (a design over the up5k); a repeated row
    # keeps its first value
    log = tmp_path / "pack.log"
    log.write_text("Info: Packing constants..\n"
                   "Info: Device utilisation:\n"
                   "Info: \t         ICESTORM_LC:   30594/   5280   579%\n"
                   "Info: \t        ICESTORM_RAM:       0/     30     0%\n"
                   "Info: \t               SB_IO:       3/     39     7%\n"
                   "Info: \t               SB_IO:       4/     39    10%\n"
                   "Info: Placed 3 cells based on constraints.\n")
    table = nextpnr.utilisation_table(log)
    assert table == {"ICESTORM_LC": (30594, 5280), "ICESTORM_RAM": (0, 30), "SB_IO": (3, 39)}
    assert nextpnr.overuse(table) == [("ICESTORM_LC", 30594, 5280)]
    assert nextpnr.utilisation_table(tmp_path / "missing.log") == {}


def test_nextpnr_report_json(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({
        "fmax": {"clk": {"achieved": 51.3, "constraint": 12.0}, "x": {"constraint": 1.0}},
        "utilization": {"ICESTORM_LC": {"available": 5280, "used": 120},
                        "ICESTORM_RAM": {"available": 30, "used": 0}}}))
    r = nextpnr.read_report(path)
    assert r.fmax == {"clk": 51.3, "x": None} and r.constraint == {"clk": 12.0, "x": 1.0}
    assert r.used() == {"ICESTORM_LC": 120} and r.available() == {"ICESTORM_LC": 5280}
    assert r.utilization["ICESTORM_RAM"] == {"used": 0, "available": 30}


def test_cache_key_is_content_addressed():
    assert cache_key(a=1, b=[1, 2]) == cache_key(b=[1, 2], a=1)
    assert cache_key(a=1) != cache_key(a=2)


# --------------------------------------------------------------------------- tool flows

def test_ports(work):
    ports = flows.read_ports(work["v"], TOP, work["build"], cache_dir=work["cache"])
    assert {(p.name, p.direction, p.width) for p in ports} == {
        ("clk", "input", 1), ("rst", "input", 1), ("a", "input", 8), ("b", "input", 8),
        ("o", "output", 9)}


@pytest.mark.parametrize("target", ["xc7", "gates"])
def test_synthesis_only_targets(work, target):
    r = _synth(work, target)
    assert r["area"] > 0 and r["ffs"] == 17     # 9 output + 8 submodule flip-flops
    assert r["fmax_mhz"] is None and r["placed"] is None
    assert "$scopeinfo" not in r["cells"]
    # the raw yosys statistics do hold a $scopeinfo cell (the submodule's scope), so the
    # exclusion is doing something
    if not r["cached"]:
        stat = json.loads((pathlib.Path(r["build_dir"]) / "stat.json").read_text())
        assert stat["design"]["num_cells_by_type"].get("$scopeinfo", 0) >= 1
    if target == "xc7":
        assert r["area"] == sum(n for t, n in r["cells"].items()
                                if t in {f"LUT{i}" for i in range(1, 7)})
    else:
        assert r["area_unit"] == "transistor" and r["area"] > 100


def test_cache_reuses_result_without_running_tools(work, monkeypatch):
    first = _synth(work, "xc7")

    def boom(*a, **k):
        raise AssertionError("a tool ran although the result is cached")

    monkeypatch.setattr(flows, "run_yosys", boom)
    monkeypatch.setattr(flows, "run_nextpnr", boom)
    again = _synth(work, "xc7")
    assert again["cached"] is True
    assert {k: again[k] for k in ("area", "ffs", "cells")} == \
        {k: first[k] for k in ("area", "ffs", "cells")}
    # without a cache the (patched) tool would have to run
    with pytest.raises(AssertionError, match="cached"):
        flows.synthesize(work["v"], TOP, "xc7", work["build"], cache_dir=False)


def test_ice40_placed_in_harness(work):
    r = _synth(work, "ice40-up5k")
    assert r["fits"] is True and r["area_kind"] == "placed"
    assert r["fmax_mhz"] and r["fmax_mhz"] > 0
    placed = r["placed"]
    # the harness's own logic cells are subtracted
    assert 0 < r["area"] < placed["total"]["area"]
    assert r["area"] == placed["total"]["area"] - placed["harness"]["area"]
    assert r["ffs"] == 17
    path = r["critical_path"]
    assert path["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=0.01)
    ceiling = flows.fmax_ceiling("ice40-up5k", work["build"], cache_dir=work["cache"])
    assert ceiling and ceiling > 0


def _segment(kind, cell, delay, net=None):
    seg = {"type": kind, "delay": delay, "from": {"cell": cell}, "to": {"cell": cell}}
    if net:
        seg["net"] = net
    return seg


def test_critical_path_of_the_slowest_clock():
    """The register-to-register path of the clock with the lowest Fmax; paths to or from
    ports (<async>) and clocks without an Fmax are left out; no such path: None."""
    fast = [_segment("clk-to-q", "a", 1.0), _segment("routing", "b", 1.0, "n1")]
    slow = [_segment("clk-to-q", "p", 1.5), _segment("routing", "q", 2.0, "m1"),
            _segment("logic", "q", 1.0), _segment("routing", "r", 3.0, "m2"),
            _segment("setup", "r", 0.5)]
    report = {"fmax": {"fast": {"achieved": 500.0}, "slow": {"achieved": 125.0}},
              "critical_paths": [
                  {"from": "posedge fast", "to": "posedge fast", "path": fast},
                  {"from": "posedge slow", "to": "posedge slow", "path": slow},
                  {"from": "<async>", "to": "posedge slow",
                   "path": [_segment("routing", "io", 9.0, "pin")]},
                  {"from": "posedge other", "to": "posedge other", "path": fast}]}
    assert flows.critical_path(report) == {
        "from": "p", "to": "r", "delay_ns": 8.0, "clock": "slow", "from_net": "m1",
        "to_net": "m2"}
    report["critical_paths"] = report["critical_paths"][2:]
    assert flows.critical_path(report) is None
    assert flows.critical_path({}) is None


def test_core_critical_path_named(tmp_path):
    """A tiny core placed on the UP5K names its critical path: cells and nets of the core
    (inside the harness's ``dut``), and a delay that is 1000 / Fmax."""
    cfg = CoreConfig.create(d=2, b=4, N=4, w=4)
    rep = synth_config(cfg, "ice40-up5k", build_dir=tmp_path / "b", baseline=False,
                       cache_dir=False)
    path, fmax = rep["design"]["critical_path"], rep["design"]["fmax_mhz"]
    assert rep["baseline"]["critical_path"] is None
    assert set(path) == {"from", "to", "delay_ns", "clock", "from_net", "to_net"}
    assert all(path[key].startswith("dut.") for key in ("from", "to", "from_net", "to_net"))
    assert path["clock"].startswith("clk")
    assert path["delay_ns"] == pytest.approx(1000 / fmax, rel=0.01)
    assert f"critical path {path['from']} -> {path['to']}, {path['delay_ns']} ns" \
        in format_report(rep)
    # the SDF's slowest path has nextpnr's critical delay (a tie of many end cells on one
    # net can name another end than nextpnr's); the rest are no slower, one per end cell
    top = rep["design"]["top_paths"]
    assert top[0]["delay_ns"] == pytest.approx(path["delay_ns"], rel=0.01)
    assert top[0]["from"] == path["from"]
    assert [p["delay_ns"] for p in top] == sorted((p["delay_ns"] for p in top), reverse=True)
    assert len({p["to"] for p in top}) == len(top) and rep["baseline"]["top_paths"] is None


def test_synth_report_without_and_with_baseline(work):
    rep = flows.synth_report(work["v"], TOP, None, None, "gates", work["build"],
                             cache_dir=work["cache"])
    for key in ("target", "area_unit", "design", "baseline", "area_reduction",
                "fmax_ceiling_mhz"):
        assert key in rep
    assert rep["baseline"] == {"area": None, "ffs": None, "fmax_mhz": None,
                               "critical_path": None, "top_paths": None, "bram_outreg": None,
                               "memory_bits": None,
                               "memory_transistors": None, "logic_transistors": None}
    assert rep["area_reduction"] is None and rep["fmax_ceiling_mhz"] is None
    assert rep["design"]["area"] > 0 and rep["tool_versions"]["yosys"].startswith("Yosys")
    json.dumps(rep)                             # serialisable as it is
    same = flows.synth_report(work["v"], TOP, work["v"], TOP, "gates", work["build"],
                              cache_dir=work["cache"])
    assert same["area_reduction"] == 0.0
    assert same["baseline"]["area"] == same["design"]["area"]


def test_breakdown_per_module(work):
    r = bd.breakdown(work["v"], TOP, "gates", work["build"], cache_dir=work["cache"])
    child = f"{TOP}.mix"
    assert set(r["modules"]) == {TOP, child}
    assert r["modules"][TOP]["children"] == {child: 1}
    top, sub = r["modules"][TOP], r["modules"][child]
    assert top["total"]["area"] == top["local"]["area"] + sub["total"]["area"]
    assert (top["total"]["ffs"], sub["total"]["ffs"]) == (17, 8)
    assert r["tree"][0]["module"] == TOP and r["tree"][0]["share"] == 1.0
    assert TOP in bd.format_breakdown(r)


def test_breakdown_command(work, capsys, tmp_path):
    assert bd.main([str(work["v"]), "--top", TOP, "--target", "gates",
                    "--build-dir", str(tmp_path / "bd")]) == 0
    out = capsys.readouterr().out
    assert f"{TOP}.mix" in out and "share" in out
    assert bd.main([str(tmp_path / "missing.v")]) == 2
    assert "missing.v: no such file" in capsys.readouterr().err


def test_unknown_target_is_refused(work):
    with pytest.raises(ValueError, match="unknown target"):
        _synth(work, "stratix")


@pytest.mark.parametrize("target", ["ice40-hx8k", "ecp5-25k"])
def test_other_placed_targets(work, target):
    r = _synth(work, target)
    assert r["fits"] and 0 < r["area"] < r["placed"]["total"]["area"]
    assert r["fmax_mhz"] > 0


def test_design_that_does_not_fit_reports_packed_area(tmp_path):
    """On a device too small for it the design is packed, not placed: area from the packed
    cell count, fits false, no Fmax."""
    vpath = tmp_path / "mul16.v"
    vpath.write_text(verilog.convert(_Mul16(), name="mul16", emit_src=False))
    small = flows.Target("ice40-lp384", "ice40", "synth_ice40 -top {top}",
                         ("--lp384", "--package", "qn32"), "ICESTORM_LC", 4)
    r = flows.synthesize(vpath, "mul16", small, tmp_path / "build", cache_dir=False)
    assert r["fits"] is False and r["area_kind"] == "packed"
    assert r["fmax_mhz"] is None and "does not fit" in r["placed"]["error"]
    assert r["area"] > 384 and r["ffs"] == 32


def test_ecp5_abc9_crash_falls_back_to_abc(monkeypatch, tmp_path):
    """Yosys 0.70's abc9 assertion (rtlil.cc:3091) on ECP5 reruns the script with abc -lut 4;
    any other failure, or the crash on another family, is raised."""
    scripts = []

    def fake(script, *, cwd, name, timeout=None, notify=None):
        scripts.append(script)
        if "abc -lut 4" not in script:
            raise ToolError("yosys failed with exit status 1: ERROR: Assert `GetSize(conn."
                            "first) == GetSize(conn.second)' failed in kernel/rtlil.cc:3091.")
        return "ok"

    monkeypatch.setattr(flows, "run_yosys", fake)
    res, used = flows._run_synth("read_verilog a.v\nsynth_ecp5 -nowidelut -top t\n",
                                 tmp_path, 10)
    assert (res, used) == ("ok", True)
    assert scripts[1] == ("read_verilog a.v\nsynth_ecp5 -nowidelut -top t -run :map_luts\n"
                          "techmap -map +/lattice/latches_map.v\nabc -lut 4\nclean\n"
                          "synth_ecp5 -nowidelut -top t -run map_cells:\n")
    with pytest.raises(ToolError, match="rtlil.cc"):
        flows._run_synth("synth_ice40 -top t\n", tmp_path, 10)
