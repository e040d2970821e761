"""The hsoftmax value path with sums per shift class (rtl/hsoftmax.py): its plan's widths and
timing, and the component in the Amaranth simulator against the golden model (every beat,
and its timing at full rate)."""

import dataclasses

import pytest
from amaranth.back import verilog

from hamattn import CoreConfig
from hamattn.rtl import HsoftmaxPlan, HsoftmaxValuePath, Timing
from hamattn.verif.valuepath_cases import check_value_path

#: M = 1, 2, an M dividing neither N nor n, M = N; folded (a divisor and a non-divisor of d)
#: and not; smax = 0 (one class), smax past the LUT RAM's 16 bins (class_bits 1); n = 1 and
#: n < M come from the random windows (n from 1 to N)
CASES = {
    "M1": dict(d=3, w=8, b=7, N=5),
    "M2_P2": dict(d=3, w=8, b=12, N=6, lanes=2, keys_per_cycle=2),
    "M3_N7_P4": dict(d=8, w=6, b=12, N=7, lanes=4, keys_per_cycle=3),
    "MN_P1": dict(d=3, w=8, b=9, N=5, lanes=1, keys_per_cycle=5),
    "M4_smax0": dict(d=4, w=8, b=8, N=9, keys_per_cycle=4, smax=0),
    "M3_smax20_P3": dict(d=5, w=8, b=16, N=10, lanes=3, keys_per_cycle=3, smax=20, g=40),
    "M8_w16_P5": dict(d=16, w=16, b=65, N=20, lanes=5, keys_per_cycle=8),
    "N1": dict(d=2, w=2, b=1, N=1),
    # D = 3 (b = 1), FS = 3, one bin: the fold wait keeps the beats apart at full rate
    "b1_M8_smax0_P1": dict(d=2, w=4, b=1, N=17, lanes=1, keys_per_cycle=8, smax=0),
}


@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
@pytest.mark.parametrize("case", list(CASES))
def test_hsoftmax_matches_golden(case, pattern):
    cfg = CoreConfig.create(mode="hsoftmax", **CASES[case])
    dut = cfg.plan.value.component()
    assert type(dut) is HsoftmaxValuePath
    # several windows, back-to-back queries (1 to 4 per window)
    check_value_path(cfg, dut, seed=sum(map(ord, case + pattern)), windows=4, pattern=pattern)


@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
@pytest.mark.parametrize("case", ["M2_P2", "M3_smax20_P3", "M8_w16_P5", "b1_M8_smax0_P1"])
def test_hsoftmax_bin_stage_either_way(case, pattern):
    """The bins' update with and without its register (``bin_stage``, chosen by the bins'
    size) against the golden model: each case with the other choice than its plan's (its
    latency and interval checked from that plan at full rate)."""
    cfg = CoreConfig.create(mode="hsoftmax", **CASES[case])
    plan = dataclasses.replace(cfg.plan.value, bin_stage=not cfg.plan.value.bin_stage)
    assert plan.fold_delay == plan.fold_stages + plan.bin_stage
    check_value_path(cfg, plan.component(), seed=sum(map(ord, case + pattern)) + 1,
                     windows=4, pattern=pattern)


def test_plan_widths_and_timing():
    # the ULX3S goal: d = 64, b = 64, N = 1024, P = 16, M = 4; smax' = 16 (17 classes):
    # class_bits 1, 9 bins of sums of 256 values shifted by at most 1
    cfg = CoreConfig.create(mode="hsoftmax", d=64, w=8, b=64, N=1024, lanes=16,
                            keys_per_cycle=4)
    plan = cfg.plan.value
    assert isinstance(plan, HsoftmaxPlan)
    assert (plan.max_shift, plan.class_bits, plan.bins, plan.fine_shift) == (16, 1, 9, 1)
    assert plan.bin_width == 8 + 8 + 1 and plan.count_width == 10      # 256·2^1 = 512
    assert (plan.num_width, plan.den_width) == (35, 27)    # N·2^16·128 = 2^33
    L = plan.hamming.latency.fixed
    D, FS = L + 4, 2
    assert (plan.pipe_depth, plan.fold_stages) == (D, FS)
    # the bins of 4 slots of 16 lanes (4·(16·17 + 10) = 1,128 bits) keep the one-cycle update
    assert plan.bin_stage is False and plan.fold_delay == FS
    assert plan.fold_wait == max(0, 9 - D, -(-(9 + FS) // 2) - D)
    over = D + plan.fold_wait
    assert over == max(D, 9)
    assert plan.latency == Timing(4 * over + 9 + FS + 3, per_block=4, block=4)
    assert plan.interval == plan.latency + Timing(1)
    assert plan.key_interval == Timing(4)
    assert plan.beat_spacing == 1 + over
    # the divider of the core takes a group per beat, beat_spacing edges apart at least
    assert cfg.plan.divider.grouped and cfg.plan.divider.steps <= plan.beat_spacing
    # M = 1: a per-key term
    one = HsoftmaxPlan(4, 8, 8, 10, (3, 2, 1, 0, 0, 0, 0, 0, 0))
    assert (one.bins, one.class_bits, one.folded) == (4, 0, False)
    assert one.latency.per_key == 1 and one.latency.per_block == 0
    # small bins (4·(8 + 4) + 4 bits): the update is split by a register, and the fold
    # starts from it, one edge later
    assert one.bin_stage is True and one.fold_delay == one.fold_stages + 1
    assert one.latency.fixed == one.pipe_depth + one.fold_wait + 4 + one.fold_delay + 3
    assert HsoftmaxPlan(4, 8, 8, 10, one.weight_shifts, bin_stage=False).latency.fixed == \
        one.latency.fixed - 1


def test_plan_refuses():
    with pytest.raises(ValueError, match="keys_per_cycle = 6: 1 .. N = 5"):
        HsoftmaxPlan(4, 8, 2, 5, (1, 0, 0), keys_per_cycle=6)
    with pytest.raises(ValueError, match="b \\+ 1 = 3 shifts"):
        HsoftmaxPlan(4, 8, 2, 5, (1, 0))
    with pytest.raises(ValueError, match="class_bits = 6: 0 .. 5"):
        HsoftmaxPlan(4, 8, 2, 5, (1, 0, 0), class_bits=6)


@pytest.mark.parametrize("smax, M", [(0, 1), (0, 3), (16, 2)])
def test_no_zero_width_signals(smax, M):
    """One bin (smax = 0) and no fold wait: every signal and memory address keeps at least
    one bit (Verilator's -Wall refuses a [-1:0] range)."""
    cfg = CoreConfig.create(mode="hsoftmax", d=3, b=8, N=7, smax=smax, lanes=2,
                            keys_per_cycle=M)
    text = verilog.convert(cfg.plan.value.component(), name="hs", emit_src=False)
    assert "[-1:0]" not in text


@pytest.mark.parametrize("size", [1, 2, 9, 16, 17, 33, 65])
def test_class_lookup_matches_table(size):
    """The class table as decodes of the distance's low 4 bits and a mux by its high bits
    (``_lookup``) gives every entry of a table (binary classes and one-hot bins)."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator
    from hamattn.rtl.hsoftmax import _lookup
    rng = __import__("random").Random(size)
    table = [rng.randrange(32) for _ in range(size)]
    onehot = [1 << (x >> 2) for x in table]
    index = Signal(range(size + 1))
    out, oh = Signal(5), Signal(8)
    m = Module()
    m.d.comb += [out.eq(_lookup(table, index, 5)), oh.eq(_lookup(onehot, index, 8))]
    sim = Simulator(m)

    async def bench(ctx):
        for i, (x, y) in enumerate(zip(table, onehot)):
            ctx.set(index, i)
            assert (ctx.get(out), ctx.get(oh)) == (x, y), i
    sim.add_testbench(bench)
    sim.run()


def test_staged_bins_map_to_ice40_block_ram(tmp_path):
    """Small bins (``bin_stage``) are block RAM on the iCE40, read synchronously with no
    read-during-write bypass (``no_rw_check``: a word read as it is written is never used):
    against the same value path with the bins in LUT RAM (flip-flops on the iCE40), one
    block per slot (Cb words of at most 16 bits) more, and fewer flip-flops than the bins'
    bits."""
    from dataclasses import replace
    from hamattn.synth import flows
    cfg = CoreConfig.create(mode="hsoftmax", d=4, w=4, b=8, N=32, lanes=1, keys_per_cycle=2,
                            smax=4)
    plan = cfg.plan.value
    word = plan.lanes * plan.bin_width + plan.count_width
    assert plan.bin_stage and word <= 16
    got = {}
    for staged in (True, False):
        v = tmp_path / f"hs{staged}.v"
        v.write_text(verilog.convert(replace(plan, bin_stage=staged).component(), name="hs",
                                     emit_src=False))
        got[staged] = flows.synthesize(v, "hs", "ice40-hx8k", tmp_path / f"b{staged}",
                                       place=False, cache_dir=tmp_path / "cache")["synth"]
    assert got[True]["bram"] == got[False]["bram"] + plan.M
    # (the bins' words in flip-flops, M·(Cb + 1)·word bits, are gone; per slot the registers
    # of the values and of the sum written, 2·word bits, and a few selects come instead; a
    # read-during-write bypass would add a word and an address more per slot)
    assert got[False]["ffs"] - got[True]["ffs"] >= plan.M * (plan.bins - 2) * word
