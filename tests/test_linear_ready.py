"""The folded linear path's value ready (rtl/linear.py, ``v_take``): with its rows folded
(R > 1) and its output always ready (as in the core), ``v.ready`` is a flip-flop, so the
skid buffer in front of it sees no logic from the hash's ``o.valid`` or its own ``o.valid``;
and it takes exactly G value groups per key, one with each group's last row block, under
random handshakes. The outputs themselves are checked against the golden model in
tests/test_value_paths.py."""

import random

import pytest
from amaranth.sim import Simulator

from hamattn import CoreConfig

# R = ceil(b/T) row blocks: 2 (a divisor), 3 (a non-divisor of b), 4
PARAMS = [dict(b=8, d=4, w=8, N=6, lanes=2, rows=4),
          dict(b=7, d=3, w=8, N=5, lanes=1, rows=3),
          dict(b=16, d=5, w=4, N=9, lanes=2, rows=4)]


def run(params, seed, cycles=1500):
    """Random keys and queries (valid held until taken) and random value groups on ``v``;
    returns (cycles where v.ready moved as the inputs of the cycle were set, the groups
    taken per key, (R, G), the key tokens taken)."""
    cfg = CoreConfig.create(mode="linear", **params)
    plan = cfg.plan.value
    assert plan.row_blocks > 1 and plan.folded
    dut = plan.component()
    rng = random.Random(seed)
    moved, taken_per_key, keys_taken = [], [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        tok = None                      # the token offered: (key, code)
        vbeat = None                    # the value group offered
        taken = 0                       # groups taken since the last key token
        for cycle in range(cycles):
            # (v.ready with neither stream valid, then with the cycle's inputs: the same)
            ctx.set(dut.i.valid, 0)
            ctx.set(dut.v.valid, 0)
            before = ctx.get(dut.v.ready)
            if tok is None and rng.random() < 0.7:
                tok = (rng.random() < 0.7, rng.randrange(1 << cfg.b))
            if vbeat is None and rng.random() < 0.6:
                vbeat = [rng.randrange(-(1 << (cfg.w - 1)), 1 << (cfg.w - 1))
                         for _ in range(cfg.lanes)]
            ctx.set(dut.i.valid, tok is not None)
            if tok is not None:
                ctx.set(dut.i.payload.key, tok[0])
                ctx.set(dut.i.payload.code, tok[1])
                ctx.set(dut.i.payload.tag.last, 0)
            ctx.set(dut.v.valid, vbeat is not None)
            if vbeat is not None:
                for q, x in enumerate(vbeat):
                    ctx.set(dut.v.payload[q], x)
            if ctx.get(dut.v.ready) != before:
                moved.append(cycle)
            if vbeat is not None and ctx.get(dut.v.ready):
                vbeat = None
                taken += 1
            if tok is not None and ctx.get(dut.i.ready):
                if tok[0]:
                    taken_per_key.append(taken)
                    keys_taken.append(cycle)
                    taken = 0
                tok = None
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return moved, taken_per_key, (plan.row_blocks, plan.groups), keys_taken


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"b{p['b']}-T{p['rows']}")
def test_value_ready_is_a_flip_flop(params):
    moved, taken_per_key, (R, G), keys = run(params, seed=params["b"])
    assert len(keys) >= 5, "too few keys taken for the test to say anything"
    assert moved == []
    # a key's G groups are taken while it is read (its last group with its last word)
    assert taken_per_key == [G] * len(taken_per_key)



# (goal configs: the iCEBreaker's and the ULX3S's folding; corners: R = 2 and R = 3 with one
# level to spare, a bit heap, one row block (no accumulator), R = 8 with two levels to spare)
SPARE = [(dict(d=32, b=32, N=256, lanes=1, rows=8), 1, 1),
         (dict(d=64, b=64, N=1024, lanes=2, rows=32), 1, 0),
         (dict(b=8, d=4, w=8, N=6, lanes=2, rows=4), 1, 0),
         (dict(b=7, d=3, w=8, N=5, lanes=1, rows=3), 1, 0),
         (dict(b=7, d=3, w=8, N=5, lanes=1, rows=3, adders="lut6"), 1, 1),
         (dict(b=16, d=4, N=8, lanes=2), 0, 0),
         (dict(b=16, d=3, w=4, N=5, lanes=2, rows=2), 1, 1)]


@pytest.mark.parametrize("params,mask,split", SPARE, ids=lambda p: str(p))
def test_spare_tree_levels_keep_the_latency(params, mask, split):
    """The levels a folded read-out tree has to spare go first to a register of its masked
    operands (``mask_regs``), then to the row blocks' accumulator split in a low and a high
    half, the carry registered between them (``carry_regs``); the latency is the same
    formula either way, and the design holds the registers (``mask<q>_<t>``) and the two
    halves (``acc_lo_<q>``, ``acc_hi_<q>``) exactly where planned, one ``acc_<q>`` where
    not split. (Outputs against the golden model: tests/test_value_paths.py and
    :func:`test_split_accumulator_matches_golden`.)"""
    from amaranth.back import rtlil

    plan = CoreConfig.create(mode="linear", **params).plan.value
    assert (plan.mask_regs, plan.carry_regs) == (mask, split)
    assert plan.acc_split == (plan.num_width // 2 if split else 0)
    assert plan.tree_levels == plan.readout_latency - 1 - split
    assert plan.latency.fixed == (plan.state_steps - 1 + plan.readout_latency + 1
                                  + plan.data_regs + plan.block_regs)
    text = rtlil.convert(plan.component(), name="vp")
    assert ("mask0_0" in text) == bool(mask)
    assert ("acc_lo_0" in text and "acc_hi_0" in text) == bool(split)
    has_acc = plan.row_blocks > 1
    assert (" \\acc_0 " in text or "\\acc_0\n" in text) == (has_acc and not split)


@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_split_accumulator_matches_golden(pattern):
    """A sum-tree core with both the mask registers and the split accumulator (R = 8 row
    blocks, so a carry crosses between the halves within a group many times) against the
    golden model, at full rate and under random handshakes."""
    from hamattn.verif.valuepath_cases import check_value_path

    cfg = CoreConfig.create(mode="linear", **SPARE[-1][0])
    assert cfg.plan.value.carry_regs and cfg.plan.value.mask_regs
    check_value_path(cfg, cfg.plan.value.component(), 17, windows=3, pattern=pattern)


@pytest.mark.parametrize("params", [SPARE[-1][0], SPARE[0][0]],
                         ids=["b16-T2", "b32-T8"])
def test_accumulator_sums_drive_their_flip_flops_alone(params, tmp_path):
    """Yosys (synth_ice40) keeps the two adders of each row-block accumulator half
    (``_accumulator``: the loop's and the one whose sum leaves) apart: every flip-flop of
    ``acc_lo_<q>``, ``acc_hi_<q>`` and ``low_<q>`` is loaded straight from a sum LUT (one on a
    carry chain) that drives nothing else, so that the placer puts each in its adder bit's
    logic cell. (Merged, one sum LUT would drive an accumulator bit and a ``low`` bit, or
    a clear's LUT would stand between the sum and the flip-flop.)"""
    import json
    from collections import defaultdict
    from amaranth.back import rtlil
    from hamattn.synth.tools import run_yosys

    plan = CoreConfig.create(mode="linear", **params).plan.value
    assert plan.carry_regs
    (tmp_path / "top.il").write_text(rtlil.convert(plan.component(), name="top"))
    run_yosys("read_rtlil top.il\nsynth_ice40 -top top\nwrite_json top.json\n",
              cwd=tmp_path, name="synth")
    top = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]
    names = {b: n for n, v in top["netnames"].items() for b in v["bits"]
             if isinstance(b, int)}
    drivers, loads = {}, defaultdict(int)
    for cell in top["cells"].values():
        for port, bits in cell["connections"].items():
            for b in bits:
                if cell["port_directions"][port] == "output":
                    drivers[b] = cell
                else:
                    loads[b] += 1
    checked = 0
    for cell in top["cells"].values():
        if not cell["type"].startswith("SB_DFF"):
            continue
        q = names.get(cell["connections"]["Q"][0], "")
        if not any(q.startswith(f"{h}_") for h in ("acc_lo", "acc_hi", "low")):
            continue
        d = cell["connections"]["D"][0]
        lut = drivers.get(d)
        assert lut is not None and lut["type"] == "SB_LUT4", q
        assert loads[d] == 1, f"{q}: its sum drives {loads[d]} cells"
        i3 = drivers.get(lut["connections"]["I3"][0])
        checked += i3 is not None and i3["type"] == "SB_CARRY"
    # (every bit but the lowest of each sum comes from its chain's carry)
    assert checked >= 2 * plan.num_width, checked
