"""The scan value path keeps codes and values in real memories (issues 8, 16), read
synchronously, so that Yosys maps them to block RAM: codes one memory per slot of ceil(N/M)
codes (each can go to block or LUT RAM on its own, synth.memmap), values
(hsoftmax) ceil(N/M)·G words of M keys' groups of P lanes or (topk, which reads only its kept
keys) N·G words of one group; topk's histogram: one memory of ceil((b+1)/R) words of R
counts per slot, the M distances of each word of codes (the histogram pass stores them for
the marking pass, which runs beside the next query's histogram pass) and (M = 1) its list of
kept keys in two halves (one written while the other is read); hsoftmax's bins (one memory
per slot, block RAM where they are small: ``bin_stage``)."""

import re
from dataclasses import replace

import pytest
from amaranth.back import rtlil, verilog

from hamattn import CoreConfig
from hamattn.synth import flows


def _memories(plan):
    text = rtlil.convert(plan.component(), name="scan")
    return {name: (int(width), int(size)) for width, size, name
            in re.findall(r"^\s*memory width (\d+) size (\d+) \\(\w+)$", text, re.M)}


@pytest.mark.parametrize("mode", ["topk", "topk-stream", "hsoftmax"])
@pytest.mark.parametrize("d, lanes, M", [(5, 2, 1), (16, 4, 1), (3, 1, 3), (16, 16, 2),
                                         (5, 2, 7)])
def test_memories_hold_M_keys_per_word(mode, d, lanes, M):
    # topk: the histogram selection, or the streaming one (its list in flip-flops)
    mode, _, stream = mode.partition("-")
    cfg = CoreConfig.create(d=d, b=9, w=6, N=7, k=3, lanes=lanes, mode=mode,
                            keys_per_cycle=M)
    plan = cfg.plan.value
    if mode == "topk":
        plan = replace(plan, selection="stream" if stream else "histogram")
    mems = _memories(plan)
    words = -(-cfg.N // M)
    slots = M if mode == "hsoftmax" else 1
    assert mems["values"] == (slots * cfg.lanes * cfg.w, -(-cfg.N // slots) * cfg.groups)
    codes = {"codes"} if M == 1 else {f"codes{s}" for s in range(M)}
    for name in codes:
        assert mems[name] == (cfg.b, words)
    # topk: per slot a histogram of b+1 counts up to ceil(N/M), R per word
    histogram = mode == "topk" and not stream
    hists = ({"hist"} if M == 1 else {f"hist{s}" for s in range(M)}) if histogram else set()
    R = plan.hist_bins if histogram else 1
    for name in hists:
        assert mems[name] == (R * words.bit_length(), -(-(cfg.b + 1) // R))
    # topk: the M distances of each word of codes
    dists = {"dists"} if histogram else set()
    for name in dists:
        assert mems[name] == (M * cfg.b.bit_length(), words)
    # topk, M = 1: the list of kept keys' value addresses, two halves of min(k, N) words
    # (rounded up to a power of two; M > 1: registers, M entries written per cycle)
    listed = {"kept"} if histogram and M == 1 else set()
    for name in listed:
        half = 1 << (max(cfg.k, 2) - 1).bit_length()
        assert mems[name] == ((cfg.N * cfg.groups - 1).bit_length(), 2 * half)
    # hsoftmax: per slot its bins, one word per class c >> f: with bin_stage (small bins)
    # one memory of Cb words (at least 2) of P value bins and a den bin, read through a
    # register (block RAM); else a memory per lane (`_v<l>`) and one for den (`_c`), each
    # with the zero word Cb read for a bin not written in the group (LUT RAM read
    # asynchronously, each with its own address registers); topk: the accumulator bank in
    # flip-flops (no "bank" memory)
    slot_names = ({"bins"} if M == 1 else {f"bins{s}" for s in range(M)}) \
        if mode == "hsoftmax" else set()
    bins = set()
    for name in slot_names:
        if plan.bin_stage:
            bins.add(name)
            assert mems[name] == (cfg.lanes * plan.bin_width + plan.count_width,
                                  max(plan.bins, 2))
            continue
        lanes = {f"{name}_v{lane}": plan.bin_width for lane in range(cfg.lanes)}
        for part, width in {**lanes, f"{name}_c": plan.count_width}.items():
            bins.add(part)
            assert mems[part] == (width, plan.bins + 1)
    assert set(mems) == {"values"} | codes | hists | dists | listed | bins


def test_folded_values_memory_maps_to_ice40_block_ram(tmp_path):
    cfg = CoreConfig.create(d=4, b=8, w=8, N=256, k=4, lanes=2, mode="topk")
    bits = cfg.N * cfg.groups * cfg.lanes * cfg.w           # 512 x 16: 2 SB_RAM40_4K
    v = tmp_path / "scan.v"
    v.write_text(verilog.convert(cfg.plan.value.component(), name="scan_top", emit_src=False))
    r = flows.synthesize(v, "scan_top", "ice40-hx8k", tmp_path / "build", place=False,
                         cache_dir=tmp_path / "cache")
    # values (2 blocks), codes (256 x 8: 1 block) and the distances (256 x 4: 1 block) in
    # block RAM, not in flip-flops (yosys keeps the histogram, here 5 words of R = 2 counts,
    # and the 8 x 9 list of kept keys in logic)
    assert cfg.plan.value.hist_bins == 2
    assert r["synth"]["bram"] == bits // 4096 + 2
    assert r["synth"]["ffs"] < bits // 4


def test_stream_list_grows_linearly_with_M():
    """The streaming selection's M insertions per cycle are a chain of named lists: the
    generated code grows about linearly with M (nested expressions grew as 3^M: the
    d=5 M=7 case above took minutes to convert)."""
    def size(M):
        cfg = CoreConfig.create(d=4, b=9, w=6, N=16, k=4, mode="topk", keys_per_cycle=M)
        plan = replace(cfg.plan.value, selection="stream")
        return len(rtlil.convert(plan.component(), name="scan"))
    assert size(8) < 3 * size(4)


def test_topk_bank_in_memory_where_groups_are_many_and_narrow():
    """topk's accumulator bank is a memory of G words where G >= 16 and a group is at most
    16 bits (the iCEBreaker goal's P = 1, G = 32 of 11-bit sums: one block RAM for 352
    flip-flops), else flip-flops (the ULX3S goal's P = 8, G = 8: no block RAM taken)."""
    narrow = CoreConfig.create(d=32, b=8, w=8, N=16, k=8, lanes=1, mode="topk").plan.value
    assert narrow.bank_in_memory and narrow.lanes * narrow.num_width <= 16
    assert _memories(narrow)["bank"] == (narrow.num_width, 32)
    wide = CoreConfig.create(d=64, b=8, w=8, N=16, k=8, lanes=8, mode="topk").plan.value
    assert not wide.bank_in_memory and "bank" not in _memories(wide)
