"""bench/bram_ceiling.py: the design it builds and how it reads nextpnr's report (the build
itself runs in ``python -m hamattn.bench.bram_ceiling``, not here)."""

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
