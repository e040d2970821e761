"""Block RAM or LUT RAM per memory on ECP5 (synth.memmap): the memories read from generated
Verilog and RTLIL, the cost both ways, the allocation within the device's block RAMs, and
yosys following it."""

import pytest
from amaranth.back import rtlil, verilog
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hamattn import CoreConfig
from hamattn.rtl.queue import LUT_RAM_FIRST, NO_RW_CHECK, UnguardedReadPort
from hamattn.synth import flows, memmap


def _scan(**kw):
    cfg = CoreConfig.create(**dict(dict(d=4, b=8, w=8, N=64, k=4, lanes=2, mode="topk",
                                        keys_per_cycle=4), **kw))
    return cfg.plan.value.component()


@pytest.mark.parametrize("convert", [rtlil.convert, verilog.convert])
def test_memories_of_generated_text(convert):
    mems = memmap.memories(convert(_scan(), name="scan"))
    shapes = {m.name: (m.width, m.depth) for m in mems}
    assert {m.module for m in mems} == {"scan"}
    # (histograms of bins 0..b-1 = 8 bins (bin b is never counted), R = 2 per word: 4 words
    # of 2 5-bit counts; the distances of the histogram pass: 16 words of 4 4-bit distances)
    assert shapes == {"values": (16, 128), **{f"codes{s}": (8, 16) for s in range(4)},
                      **{f"hist{s}": (10, 4) for s in range(4)}, "dists": (16, 16)}


class _TwoReads(wiring.Component):
    """Three 9 x 64 memories: ``lut`` read asynchronously, ``ram`` synchronously, ``ureg``
    through an :class:`UnguardedReadPort` (an asynchronous read into a register, the memory
    marked ``no_rw_check``)."""

    def __init__(self):
        super().__init__({"addr": In(4), "data": In(64), "a": Out(64), "b": Out(64),
                          "c": Out(64)})

    def elaborate(self, platform):
        m = Module()
        for name, domain, out in (("lut", "comb", self.a), ("ram", "sync", self.b),
                                  ("ureg", None, self.c)):
            attrs = NO_RW_CHECK if domain is None else {}
            m.submodules[name] = mem = memory.Memory(shape=64, depth=9, init=[], attrs=attrs)
            wr = mem.write_port()
            rd = UnguardedReadPort(m, mem, name) if domain is None else \
                mem.read_port(domain=domain)
            m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.data), wr.en.eq(1),
                         rd.addr.eq(self.addr), out.eq(rd.data)]
        return m


@pytest.mark.parametrize("convert", [rtlil.convert, verilog.convert])
def test_asynchronous_reads_are_lut_ram(convert):
    mems = {m.name: m for m in memmap.memories(convert(_TwoReads(), name="top"))}
    # (the UnguardedReadPort's asynchronous read is registered: yosys merges it into a
    # synchronous port, so it may be a block RAM)
    assert {n: m.async_read for n, m in mems.items()} == {"lut": True, "ram": False,
                                                          "ureg": False}
    # both would save 96 LUT RAM cells for 2 blocks; only the synchronous one can be a block
    alloc = memmap.allocate(list(mems.values()), 56)
    assert (alloc[mems["lut"]], alloc[mems["ram"]]) == ("distributed", "block")
    # and the asynchronous one takes no block from it
    assert memmap.allocate([mems["lut"], mems["ram"]], 2)[mems["ram"]] == "block"


class _ReadModifyWrite(wiring.Component):
    """Two 9 x 248 memories whose registered read feeds their own write (a bin's update):
    ``rmw`` marked :data:`LUT_RAM_FIRST`, ``plain`` not."""

    def __init__(self):
        super().__init__({"addr": In(4), "x": In(248), "a": Out(248), "b": Out(248)})

    def elaborate(self, platform):
        m = Module()
        for name, attrs, out in (("rmw", LUT_RAM_FIRST, self.a), ("plain", {}, self.b)):
            m.submodules[name] = mem = memory.Memory(shape=248, depth=9, init=[],
                                                     attrs={**NO_RW_CHECK, **attrs})
            wr, rd = mem.write_port(), UnguardedReadPort(m, mem, name)
            m.d.comb += [rd.addr.eq(self.addr), wr.addr.eq(self.addr), wr.en.eq(1),
                         wr.data.eq(rd.data + self.x), out.eq(rd.data)]
        return m


@pytest.mark.parametrize("convert", [rtlil.convert, verilog.convert])
def test_lut_ram_first(convert):
    mems = {m.name: m for m in memmap.memories(convert(_ReadModifyWrite(), name="top"))}
    assert {n: (m.lut_ram_first, m.async_read) for n, m in mems.items()} == \
        {"rmw": (True, False), "plain": (False, False)}
    # both would save 372 LUT RAM cells for 7 blocks (53 per block); the marked one is LUT
    # RAM with blocks to spare
    alloc = memmap.allocate(list(mems.values()), 56)
    assert (alloc[mems["rmw"]], alloc[mems["plain"]]) == ("distributed", "block")
    text = convert(_ReadModifyWrite(), name="top")
    assert memmap.setattr_commands(text, "ecp5-25k") == \
        ['setattr -set ram_style "distributed" top/rmw']
    assert memmap.setattr_commands(text, "ice40-up5k") == []


def test_costs():
    # 8192 x 64 values: 32 DP16KD (16 deep x 2 wide at 512 x 36, or 4096 x 4 x 16 ...)
    assert memmap.bram_blocks(64, 8192) == 32
    assert memmap.bram_blocks(2048, 32) == 57       # 36 bits per block read at a time
    assert memmap.bram_blocks(6, 65) == 1
    assert memmap.bram_blocks(37, 513) == 3          # 1024 x 18: 3 wide, 1 deep
    assert memmap.lutram_cells(64, 32) == 6 * 16 * 2 + 64     # 2 x 16 words: a mux level
    assert memmap.lutram_cells(4, 16) == 6
    assert memmap.lutram_cells(5, 17) == 6 * 2 * 2 + 5


def test_allocation_fills_the_block_rams_by_gain():
    M = memmap.Memory
    values, queue = M("v", "values", 64, 8192), M("v", "queue", 64, 25)
    codes = [M("v", f"codes{s}", 64, 32) for s in range(32)]
    hists = [M("v", f"hist{s}", 6, 65) for s in range(32)]
    tiny = M("v", "tiny", 2, 4)
    mems = [tiny, *hists, *codes, queue, values]
    alloc = memmap.allocate(mems, 56)
    block = [m for m in mems if alloc[m] == "block"]
    assert values in block
    assert sum(memmap.bram_blocks(m.width, m.depth) for m in block) <= 56
    # 24 blocks after the values: 12 of the 2-block memories of gain 128, no histogram
    # (gain 84) while those remain; the rest LUT RAM
    assert len(block) == 13 and not set(hists) & set(block)
    assert alloc[tiny] == "distributed"              # below MIN_CELLS_PER_BLOCK
    roomy = memmap.allocate(mems, 1000)
    assert all(roomy[m] == "block" for m in mems if m is not tiny)
    assert all(s == "distributed" for s in memmap.allocate(mems, 0).values())


def test_setattr_commands_only_where_lut_ram_exists():
    text = verilog.convert(_scan(), name="scan")
    assert memmap.setattr_commands(text, "ice40-up5k") == []
    cmds = memmap.setattr_commands(text, "ecp5-25k")
    # room for all in the LFE5U-25F's 56 blocks: the values (128 x 16: 1 block or 48 cells)
    # are left to yosys, the 16 x 8 codes, 4 x 10 histograms and 16 x 16 distances (12 to
    # 24 cells) go to LUT RAM
    names = [f"codes{s}" for s in range(4)] + [f"hist{s}" for s in range(4)] + ["dists"]
    assert sorted(cmds) == sorted(f'setattr -set ram_style "distributed" scan/{name}'
                                  for name in names)


def test_yosys_follows_the_allocation(tmp_path, monkeypatch):
    v = tmp_path / "scan.v"
    v.write_text(verilog.convert(_scan(N=256), name="scan_top", emit_src=False))

    def synth(sub):
        return flows.synthesize(v, "scan_top", "ecp5-25k", tmp_path / sub, place=False,
                                cache_dir=tmp_path / "cache")["synth"]

    fits = synth("fits")
    monkeypatch.setitem(memmap.BLOCK_RAMS, "ecp5-25k", 0)    # a device without block RAM
    none = synth("none")
    assert fits["bram"] > 0 and none["bram"] == 0
    assert none["lutram"] > fits["lutram"]
