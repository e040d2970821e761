"""HammingDistance in the Amaranth simulator against golden.hamming."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hamattn import golden
from hamattn.rtl import HammingDistance, HammingPlan, Timing
from hamattn.rtl.hamming import POPCOUNT_TREES, hamming_latency
from hamattn.verif.streams import run_stream

CODE_BITS = [1, 2, 7, 8, 63, 64, 65, 130, 1024]


def as_int(bits):
    return sum(int(x) << t for t, x in enumerate(bits))


@pytest.mark.parametrize("tree", POPCOUNT_TREES)
@pytest.mark.parametrize("b", CODE_BITS, ids=[f"b{b}" for b in CODE_BITS])
@pytest.mark.parametrize("pattern", ["full_rate", "random_handshake"])
def test_hamming_matches_golden(b, pattern, tree, stages=None):
    seed = 1000 + b
    rng = np.random.default_rng(seed)
    count = 20
    a = rng.integers(0, 2, (count, b), dtype=np.uint8)
    c = rng.integers(0, 2, (count, b), dtype=np.uint8)
    a[0], c[0] = 0, 1                     # distance b
    a[1], c[1] = 1, 1                     # distance 0
    want = [int(golden.hamming(golden.pack_codes(a[i:i + 1]), golden.pack_codes(c[i:i + 1]))[0, 0])
            for i in range(count)]
    dut = HammingDistance(b, tag_shape=unsigned(5), tree=tree, stages=stages)
    p = (1.0, 1.0) if pattern == "full_rate" else (0.5, 0.6)
    run = run_stream(dut, [{"a": as_int(a[i]), "b": as_int(c[i]), "tag": i} for i in range(count)],
                     seed=seed, p_in=p[0], p_out=p[1], convert=lambda x: (int(x.h), int(x.tag)))
    assert run.outputs == list(zip(want, range(count))), f"seed {seed}"
    if pattern == "full_rate":
        assert [o - i for i, o in zip(run.in_cycles, run.out_cycles)] == \
            [hamming_latency(b, tree, stages)] * count
        assert dut.latency == Timing(hamming_latency(b, tree, stages))
        assert dut.plan == HammingPlan(b, tree, dut.stages)


@pytest.mark.parametrize("tree", POPCOUNT_TREES)
@pytest.mark.parametrize("b,stages", [(13, 1), (13, 2), (64, 3), (64, 12), (130, 2)])
def test_hamming_pipeline_stages(b, stages, tree):
    """Fewer registers than levels (levels share a stage) and more (delay registers)."""
    for pattern in ("full_rate", "random_handshake"):
        test_hamming_matches_golden(b, pattern, tree, stages)


@pytest.mark.parametrize("bad", [0, 1025, "8", 2.0])
def test_hamming_refuses_bad_width(bad):
    with pytest.raises(ValueError, match=r"code_bits = .* is not allowed: an integer 1\.\.1024"):
        HammingDistance(bad)
