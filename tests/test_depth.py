"""synth/depth.py: the estimated register-to-register paths of a netlist, on small hand-made
Yosys JSON netlists (LUT levels, carry chains, global enables, loops, the target filter,
grouping by register), on a real tiny design through Yosys (a pipelined reduction has fewer
levels than the same reduction in one stage), and its command line's errors."""

import json
import subprocess
import sys

import pytest

from hamattn.synth import depth as D
from hamattn.synth.tools import run_yosys

M = D.MODELS["ice40"]
CLK = 1


def _ff(d, q, e=None, kind="SB_DFF"):
    conns = {"C": [CLK], "D": [d], "Q": [q]}
    if e is not None:
        conns["E"] = [e]
        kind = "SB_DFFE"
    return {"type": kind, "port_directions": {p: "output" if p == "Q" else "input"
                                              for p in conns}, "connections": conns}


def _lut(ins, out):
    conns = {f"I{i}": [b] for i, b in enumerate(ins)}
    conns.update({f"I{i}": ["0"] for i in range(len(ins), 4)})
    conns["O"] = [out]
    return {"type": "SB_LUT4", "port_directions": {p: "output" if p == "O" else "input"
                                                   for p in conns}, "connections": conns}


def _carry(i0, i1, ci, co):
    conns = {"I0": [i0], "I1": [i1], "CI": [ci], "CO": [co]}
    return {"type": "SB_CARRY", "port_directions": {p: "output" if p == "CO" else "input"
                                                    for p in conns}, "connections": conns}


def _netlist(tmp_path, cells, names):
    top = {"attributes": {"top": "00000000000000000000000000000001"}, "cells": cells,
           "netnames": {n: {"hide_name": 0, "bits": [b]} for n, b in names.items()}}
    p = tmp_path / "n.json"
    p.write_text(json.dumps({"modules": {"t": top}}))
    return p


def _route(levels, carries=0, start=M["clk_to_q"]):
    return start + levels * (M["route"] + M["lut"]) + carries * M["carry"] + M["route"] \
        + M["setup"]


def test_lut_levels_and_the_delay_model(tmp_path):
    # a -> LUT -> LUT -> b, and a -> b directly
    cells = {"fa": _ff(10, 2), "l1": _lut([2], 3), "l2": _lut([3, 2], 4), "fb": _ff(4, 5),
             "fc": _ff(2, 6)}
    p = _netlist(tmp_path, cells, {"a": 2, "b": 5, "c": 6, "x": 3, "y": 4, "din": 10})
    r = D.analyse(p)
    by = {(q["from"], q["to"]): q for q in r["paths"]}
    assert by[("a", "b")]["levels"] == 2
    assert by[("a", "b")]["ns"] == pytest.approx(_route(2), abs=0.01)
    assert by[("a", "c")]["levels"] == 0
    assert r["paths"][0]["from"] == "a" and r["paths"][0]["to"] == "b"  # worst first
    assert r["family"] == "ice40"


def test_carry_chain_costs_per_cell_not_per_level(tmp_path):
    # a feeds the first carry's I0; four carries chained; the last CO -> LUT -> b
    cells = {"fa": _ff(9, 2)}
    ci = "0"
    for i in range(4):
        cells[f"c{i}"] = _carry(2 if i == 0 else "0", "0", ci, 20 + i)
        ci = 20 + i
    cells["l"] = _lut([23], 30)
    cells["fb"] = _ff(30, 31)
    p = _netlist(tmp_path, cells, {"a": 2, "b": 31, "din": 9})
    (path,) = [q for q in D.analyse(p)["paths"] if q["to"] == "b"]
    assert path["levels"] == 2  # entering the chain and the LUT after it
    want = M["clk_to_q"] + (M["route"] + M["carry"]) + 3 * M["carry"] \
        + (M["route"] + M["lut"]) + M["route"] + M["setup"]
    assert path["ns"] == pytest.approx(want, abs=0.01)


def test_a_wide_clock_enable_counts_as_a_global_buffer(tmp_path):
    n = M["global_fanout"]
    cells = {"fa": _ff(9, 2), "l": _lut([2], 3)}
    names = {"a": 2, "din": 9}
    for i in range(n):
        cells[f"f{i}"] = _ff(9, 100 + i, e=3)
        names[f"r{i}"] = 100 + i
    r = D.analyse(_netlist(tmp_path, cells, names))
    wide = [q for q in r["paths"] if q["from"] == "a"]
    assert len(wide) == n and all(q["global"] for q in wide)
    assert wide[0]["ns"] == pytest.approx(_route(1) + M["global_extra"], abs=0.01)
    # one flip-flop fewer: no global buffer
    del cells["f0"]
    r = D.analyse(_netlist(tmp_path, cells, names))
    assert not any(q["global"] for q in r["paths"])


def test_bits_of_one_register_are_grouped_and_the_target_filters(tmp_path):
    cells = {"fa": _ff(9, 2), "l1": _lut([2], 3), "l2": _lut([3], 4),
             "fb0": _ff(4, 5), "fb1": _ff(3, 6), "fc": _ff(2, 7)}
    p = tmp_path / "n.json"
    top = {"attributes": {"top": "1"}, "cells": cells,
           "netnames": {"a": {"hide_name": 0, "bits": [2]},
                        "b": {"hide_name": 0, "bits": [5, 6]},
                        "c": {"hide_name": 0, "bits": [7]}, "din": {"hide_name": 0, "bits": [9]}}}
    p.write_text(json.dumps({"modules": {"t": top}}))
    (ab,) = [q for q in D.analyse(p)["paths"] if (q["from"], q["to"]) == ("a", "b")]
    assert ab["bits"] == 2 and ab["levels"] == 2
    # a target between the 1-level and 2-level paths keeps only a -> b, with one bit over it
    mhz = 1000.0 / ((_route(1) + _route(2)) / 2)
    r = D.analyse(p, target_mhz=mhz)
    assert [(q["from"], q["to"], q["bits"]) for q in r["paths"]] == [("a", "b", 1)]
    assert r["target_ns"] == pytest.approx(1000.0 / mhz)


def test_a_combinational_loop_ends(tmp_path):
    cells = {"fa": _ff(9, 2), "l1": _lut([2, 4], 3), "l2": _lut([3], 4), "fb": _ff(4, 5)}
    r = D.analyse(_netlist(tmp_path, cells, {"a": 2, "b": 5, "din": 9}))
    assert any(q["to"] == "b" for q in r["paths"])


def test_a_real_design_through_yosys(tmp_path):
    """A 32-input AND between registers: in one stage it needs 3 LUT4 levels; with a
    register after the first level each stage has at most 2. The analysis sees both."""
    src = """
module t(input clk, input [31:0] a, output reg y, output reg z);
  reg [31:0] r; reg [7:0] p;
  integer i;
  always @(posedge clk) begin
    r <= a;
    y <= &r;
    for (i = 0; i < 8; i = i + 1) p[i] <= &r[4*i +: 4];
    z <= &p;
  end
endmodule
"""
    (tmp_path / "t.v").write_text(src)
    run_yosys("read_verilog t.v\nsynth_ice40 -top t\nwrite_json t.json\n", cwd=tmp_path,
              name="synth")
    r = D.analyse(tmp_path / "t.json")
    by = {(q["from"], q["to"]): q for q in r["paths"]}
    assert by[("r", "y")]["levels"] == 3
    assert by[("r", "p")]["levels"] == 1
    assert by[("p", "z")]["levels"] == 2
    assert by[("r", "y")]["bits"] == 1 and by[("r", "p")]["bits"] == 8


def test_bad_input_gives_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(D.DepthError, match="cannot read .* as JSON"):
        D.analyse(tmp_path / "bad.json")
    with pytest.raises(D.DepthError, match="'.*missing.json' is not a file or a build directory"):
        D.analyse(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DepthError, match="no Yosys JSON netlist in directory"):
        D.analyse(tmp_path / "empty")
    (tmp_path / "x.json").write_text(json.dumps({"modules": {}}))
    with pytest.raises(D.DepthError, match="has 0 top modules"):
        D.analyse(tmp_path / "x.json")
    with pytest.raises(D.DepthError, match="--candidate 'nope' is not allowed: one of "
                       "icebreaker-hsoftmax-P1,"):
        D.synthesize_candidate("nope", tmp_path / "c")


@pytest.mark.parametrize("argv, message", [
    (["--target-mhz", "0", "x.json"], "--target-mhz = 0.0 is not allowed: a frequency above 0"),
    (["--top", "0", "x.json"], "--top = 0 is not allowed: an integer of at least 1"),
    ([], "give either a netlist or --candidate NAME"),
    (["x.json", "--candidate", "icebreaker-topk-P1"], "give either a netlist or --candidate"),
])
def test_command_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        D.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_command_line_table_and_json(tmp_path):
    cells = {"fa": _ff(9, 2), "l1": _lut([2], 3), "fb": _ff(3, 5)}
    p = _netlist(tmp_path, cells, {"a": 2, "b": 5, "din": 9})
    run = [sys.executable, "-m", "hamattn.synth.depth", str(p)]
    out = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert "| `a` | `b` |" in out and "register pairs" in out
    js = json.loads(subprocess.run(run + ["--json"], capture_output=True, text=True,
                                   check=True).stdout)
    assert any(q["from"] == "a" and q["to"] == "b" and q["levels"] == 1 for q in js["paths"])
    bad = subprocess.run(run[:-1] + [str(tmp_path / "missing.json")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
