"""The folded scan value path keeps its values in a real memory (issue 8): depth N·G,
width P·w, read synchronously, so that Yosys maps it to block RAM; topk's distance
histogram too."""

import re

import pytest
from amaranth.back import rtlil, verilog

from hamattn import CoreConfig
from hamattn.synth import flows


def _memories(cfg):
    text = rtlil.convert(cfg.plan.value.component(), name="scan")
    return {name: (int(width), int(size)) for width, size, name
            in re.findall(r"^\s*memory width (\d+) size (\d+) \\(\w+)$", text, re.M)}


@pytest.mark.parametrize("mode", ["topk", "hsoftmax"])
@pytest.mark.parametrize("d, lanes", [(5, 2), (16, 4), (3, 1), (16, 16)])
def test_values_memory_is_N_G_deep_and_P_w_wide(mode, d, lanes):
    cfg = CoreConfig.create(d=d, b=9, w=6, N=7, k=3, lanes=lanes, mode=mode)
    mems = _memories(cfg)
    assert mems["values"] == (cfg.lanes * cfg.w, cfg.N * cfg.groups)
    assert mems["codes"] == (cfg.b, cfg.N)
    if mode == "topk" and cfg.folded:               # the distance histogram: b+1 counts
        assert mems["hist"] == ((cfg.N).bit_length(), cfg.b + 1)
    else:
        assert "hist" not in mems


def test_folded_values_memory_maps_to_ice40_block_ram(tmp_path):
    cfg = CoreConfig.create(d=4, b=8, w=8, N=256, k=4, lanes=2, mode="topk")
    bits = cfg.N * cfg.groups * cfg.lanes * cfg.w           # 512 x 16: 2 SB_RAM40_4K
    v = tmp_path / "scan.v"
    v.write_text(verilog.convert(cfg.plan.value.component(), name="scan_top", emit_src=False))
    r = flows.synthesize(v, "scan_top", "ice40-hx8k", tmp_path / "build", place=False,
                         cache_dir=tmp_path / "cache")
    # values (2 blocks), codes (256 x 8: 1 block) and the histogram (9 x 9: 1 block) in
    # block RAM, not in flip-flops
    assert r["synth"]["bram"] == bits // 4096 + 2
    assert r["synth"]["ffs"] < bits // 4
