"""bench/bram_ceiling.py: the design it builds and how it reads nextpnr's report (the build
itself runs in ``python -m hamattn.bench.bram_ceiling``, not here)."""

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from hamattn.bench import bram_ceiling as B


def test_ram_read_design_has_one_memory_and_registered_read():
    text = rtlil.convert(B.RamRead(width=8, depth=16), name="top")
    assert text.count("memory_write") + text.count("$memwr") >= 1
    assert "\\mem" in text


def test_ram_read_output_follows_its_register():
    dut = B.RamRead(width=8, depth=16)
    seen = []

    async def bench(ctx):
        for i in range(200):
            ctx.set(dut.din, i % 3 == 0)
            await ctx.tick()
            seen.append(ctx.get(dut.dout))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert set(seen) == {0, 1}         # the LFSR writes and reads data: the output toggles


def test_segments_and_clock_to_out_from_a_report():
    report = {"critical_paths": [{"path": [
        {"type": "clk-to-q", "delay": 5.83, "from": {"cell": "mem.0.1"}},
        {"type": "routing", "delay": 1.25, "from": {"cell": "mem.0.1"}},
        {"type": "setup", "delay": 0.1, "from": {"cell": "data_FF"}}]}]}
    assert B.segments(report) == [("clk-to-q", "mem.0.1", 5.83), ("routing", "mem.0.1", 1.25),
                                  ("setup", "data_FF", 0.1)]


def test_out_in_a_missing_folder_is_refused_before_any_build(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        B.main(["--out", str(tmp_path / "no" / "x.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--out '{tmp_path / 'no' / 'x.json'}': its folder '{tmp_path / 'no'}' does not " \
        "exist (allowed: a path in an existing folder)" in err
