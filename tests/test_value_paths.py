"""The value paths of LinearPlan and ScanPlan (topk, hsoftmax), unfolded and folded, against
the golden num and den, their timing against their plan's."""

import pytest

from hamattn import CoreConfig
from hamattn.rtl import (FoldedLinearValuePath, FoldedScanValuePath, HsoftmaxValuePath,
                         LinearValuePath, ScanPlan, ScanValuePath)
from hamattn.verif.corners import HEAP_CORNERS, MODES
from hamattn.verif.corners import VALUE_PATH_CORNERS as CORNERS
from hamattn.verif.corners import VALUE_PATH_KEY_CORNERS as KEY_CORNERS
from hamattn.verif.corners import VALUE_PATH_ROW_CORNERS as ROW_CORNERS
from hamattn.verif.valuepath_cases import check_value_path

PATTERNS = ["full_rate", "random_handshake"]
CASES = [(p, c, m, "sum") for p in PATTERNS for c in CORNERS for m in MODES] + \
    [(p, c, "linear", "sum") for p in PATTERNS for c in ROW_CORNERS] + \
    [(p, c, m, "sum") for p in PATTERNS for c in KEY_CORNERS for m in MODES[1:]] + \
    [("full_rate", c, "linear", a) for c in HEAP_CORNERS for a in ("lut6", "lut4")] + \
    [("random_handshake", c, "linear", "lut6") for c in HEAP_CORNERS[4:6]]


def component(cfg):
    """The value path of the config's plan, of the class its folding asks for."""
    dut = cfg.plan.value.component()
    kind = {"linear": (LinearValuePath, FoldedLinearValuePath),
            "hsoftmax": (HsoftmaxValuePath, HsoftmaxValuePath)}.get(
        cfg.mode, (ScanValuePath, FoldedScanValuePath))
    assert type(dut) is kind[cfg.folded]
    return dut


@pytest.mark.parametrize("pattern, corner, mode, adders", CASES,
                         ids=["-".join(c) for c in CASES])
def test_value_path_matches_golden(corner, mode, adders, pattern):
    cfg = CoreConfig.create(mode=mode, adders=adders,
                            **{**CORNERS, **ROW_CORNERS, **KEY_CORNERS}[corner])
    check_value_path(cfg, component(cfg), sum(map(ord, corner + mode)),
                     windows=2 if cfg.N == 64 else 3, pattern=pattern)


def test_scan_value_path_refuses_linear():
    with pytest.raises(ValueError, match="serves modes topk and hsoftmax, not 'linear'"):
        ScanPlan("linear", d=4, w=8, b=8, N=4)
    # k belongs to topk, the shift table to hsoftmax: neither is taken and ignored
    with pytest.raises(ValueError, match="k in mode topk, weight_shifts in hsoftmax"):
        ScanPlan("hsoftmax", d=4, w=8, b=2, N=4, k=2, weight_shifts=(0, 1, 2))
    with pytest.raises(ValueError, match="k in mode topk, weight_shifts in hsoftmax"):
        ScanPlan("topk", d=4, w=8, b=2, N=4)
    plan = ScanPlan("topk", d=4, w=8, b=2, N=4, k=2, lanes=2)
    assert (plan.groups, plan.kept, plan.max_weight, plan.hamming.b) == (2, 2, 1, 2)
