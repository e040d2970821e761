"""Test vectors for the user's own simulation flow (SPEC §6 ``hamattn vectors``).

:func:`write_vectors` writes, into one folder, the generated Verilog and its manifest
(:func:`hamattn.gen.generate`), the stimulus and the golden model's expectations as
``$readmemh`` files, and a self-checking plain-Verilog testbench that needs no Python at
simulation time::

    <top>.v, <top>.json   the core and its manifest (SPEC §5)
    <top>_kv.hex          one key beat a line: {tlast, value, key}       2·d·w + 1 bits
    <top>_q.hex           one query beat a line: {tlast, query}          d·w + 1 bits
    <top>_out.hex         one expected output a line: {tuser, tlast, data}  d·w + 2 bits
    <top>_latency.hex     the manifest's latency for each output (32 bits): SPEC §5's
                          A + C·n [+ D·ceil(n/M) + E·min(k, n)] for its window's n used keys
    <top>_tb.v            the testbench (Verilog-2005, also valid SystemVerilog)

The windows come from :func:`hamattn.verif.scenario.random_windows` and the expected beats
from :func:`hamattn.verif.scenario.expected_beats` (the golden model), as in the cocotb
testbench. They are split into two phases: the first ``ceil(windows / 2)`` windows run at
full throughput (every valid and ``m_out_tready`` held high; the latency of each output whose
query found no earlier query of its window in flight is checked against the manifest), the
rest with valid and ready drawn from seeded 32-bit LFSRs. The first phase starts with
windows of 1 key, N keys and more than N keys (``tuser`` = 1), the second with more than N,
1 and N; the other windows have 1..N keys at random.
"""

from __future__ import annotations

import json
import os
import shlex
import sys

import numpy as np

from ..config import ConfigError
from ..gen import DEFAULT_TOP, generate
from .scenario import expected_beats, kv_stream, pack_vector, q_stream, random_windows
from ..flags import config_flags

__all__ = ["DEFAULT_WINDOWS", "vector_windows", "write_vectors", "run_cli",
           "testbench_text"]

DEFAULT_WINDOWS = 8
#: queries per window (inclusive range): several, so that queries overlap at full rate
QUERIES = (1, 5)
#: valid/ready probabilities of the random phase, in 256ths (about 0.2 to 0.9)
P_RANGE = (48, 232)


def check_windows(windows):
    """Refuse a window count that is not an integer >= 1."""
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ConfigError("windows", windows, "an integer >= 1", "--windows")
    return windows


def vector_windows(cfg, rng, count):
    """``count`` windows in two phases of ceil(count/2) and floor(count/2), and the size of
    the first: the first phase starts with windows of 1, N and more than N keys, the second
    with more than N, 1 and N (so that 3 windows hold each kind), then random sizes 1..N."""
    over = cfg.N + max(2, min(cfg.N // 2, 64))
    first = -(-count // 2)
    wins = []
    for phase, sizes in ((first, (1, cfg.N, over)), (count - first, (over, 1, cfg.N))):
        for i in range(phase):
            n_keys = sizes[i] if i < len(sizes) else None
            wins += random_windows(cfg, rng, 1, n_keys=n_keys, n_queries=QUERIES)
    return wins, first


def _hex_lines(words, bits):
    digits = -(-bits // 4)
    return "".join(f"{x:0{digits}x}\n" for x in words)


def write_vectors(cfg, out_dir, top=DEFAULT_TOP, windows=DEFAULT_WINDOWS, seed=0,
                  progress=None):
    """Write the Verilog, the manifest, the vectors and the testbench of ``cfg`` into
    ``out_dir`` (see the module docstring); return ``{"verilog", "manifest", "testbench",
    "kv", "q", "out", "latency", "windows", "key_beats", "queries"}`` (paths and counts).
    ``seed`` (>= 0) draws the windows and the LFSR seeds and probabilities."""
    check_windows(windows)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", seed, "an integer >= 0", "--seed")
    vpath, jpath = generate(cfg, out_dir, top, progress)
    with open(jpath) as f:
        man = json.load(f)
    rng = np.random.default_rng([seed, 0x76656374])        # "vect"
    wins, first = vector_windows(cfg, rng, windows)
    beats = expected_beats(cfg, wins)
    kv, q = kv_stream(cfg, wins), q_stream(cfg, wins)
    dw = cfg.d * cfg.w
    kv_words = [data | (last << 2 * dw) for data, last in kv]
    q_words = [data | (last << dw) for data, last in q]
    out_words = [pack_vector(b.data, cfg.w) | (b.last << dw) | (b.user << dw + 1)
                 for b in beats]
    lat = [cfg.at(man["latency"], b.n_used) for b in beats]
    paths = {name: os.path.join(out_dir, f"{top}_{name}.hex")
             for name in ("kv", "q", "out", "latency")}
    for name, words, bits in (("kv", kv_words, 2 * dw + 1), ("q", q_words, dw + 1),
                              ("out", out_words, dw + 2), ("latency", lat, 32)):
        with open(paths[name], "w", newline="\n") as f:
            f.write(_hex_lines(words, bits))
    n_kv0 = sum(w.n_keys for w in wins[:first])
    n_q0 = sum(len(w.queries) for w in wins[:first])
    worst = max(cfg.at(man[t], n) for t in ("latency", "q_interval", "kv_interval")
                for n in (1, cfg.N))
    p = [int(x) for x in rng.integers(P_RANGE[0], P_RANGE[1] + 1, 3)]
    lfsr = [int(x) for x in rng.integers(1, 2**32, 3)]
    text = testbench_text(
        top, d=cfg.d, w=cfg.w, n_kv=len(kv), n_q=len(q), n_kv0=n_kv0, n_q0=n_q0,
        windows=windows, stall=1000 + 8 * worst, p=p, lfsr=lfsr,
        about=f"config: {shlex.join(config_flags(cfg)) or 'the defaults'}; vectors seed "
              f"{seed}; {windows} windows, {first} at full throughput".replace("\n", " "))
    tb = os.path.join(out_dir, f"{top}_tb.v")
    with open(tb, "w", newline="\n") as f:
        f.write(text)
    return {"verilog": vpath, "manifest": jpath, "testbench": tb, **paths,
            "windows": windows, "key_beats": len(kv), "queries": len(q)}


def testbench_text(top, *, d, w, n_kv, n_q, n_kv0, n_q0, windows, stall, p, lfsr, about):
    """The Verilog of ``<top>_tb``: the template :data:`TESTBENCH` with its numbers."""
    subs = {"TOP": top, "D": d, "W": w, "N_KV": n_kv, "N_Q": n_q, "N_KV0": n_kv0,
            "N_Q0": n_q0, "WINDOWS": windows, "STALL": stall, "ABOUT": about,
            "P_KV": p[0], "P_Q": p[1], "P_OUT": p[2],
            "SEED_KV": f"{lfsr[0]:08x}", "SEED_Q": f"{lfsr[1]:08x}",
            "SEED_OUT": f"{lfsr[2]:08x}"}
    text = TESTBENCH
    for key, value in subs.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def run_cli(cfg, args):
    """``hamattn vectors``: write everything and print one line of what and how to run."""
    res = write_vectors(cfg, args.output, args.top, args.windows, cfg.seed,
                        progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = shlex.quote(args.output)
    print(f"wrote {res['testbench']}, {os.path.basename(res['verilog'])}, the manifest and 4 "
          f"$readmemh files ({res['windows']} windows, {res['key_beats']} key beats, "
          f"{res['queries']} queries) to {out}; run: cd {out} && iverilog -g2012 -o tb.vvp "
          f"{args.top}_tb.v {args.top}.v && vvp -n tb.vvp   (docs/vectors.md: other "
          f"simulators)")
    return 0


TESTBENCH = r"""// @TOP@_tb: self-checking testbench of @TOP@, written by `hamattn vectors`.
// @ABOUT@
//
// Drives the key/value and query streams from @TOP@_kv.hex and @TOP@_q.hex, compares every
// output beat {tuser, tlast, data} with @TOP@_out.hex (the golden model), and prints one
// final line: PASS, or FAIL followed by $fatal (non-zero exit status). Plain Verilog-2005,
// also valid SystemVerilog. Run it from this folder (the file names are relative; override
// the *_FILE parameters otherwise). Icarus Verilog, then Verilator 5 (docs/vectors.md):
//     iverilog -g2012 -o tb.vvp @TOP@_tb.v @TOP@.v && vvp -n tb.vvp
//     $ verilator --binary -Wno-lint -Wno-style --top-module @TOP@_tb @TOP@_tb.v @TOP@.v
//     obj_dir/V@TOP@_tb
//
// Phase 1 (the first N_KV0 key beats and N_Q0 queries): every tvalid and m_out_tready held
// high; each output whose query transferred with no earlier query of its window in flight
// must transfer exactly the manifest's latency later (rising edges, SPEC §5;
// @TOP@_latency.hex holds it per output for its window's n used keys).
// Phase 2 (the rest, after every phase-1 output): each idle source raises tvalid, and the
// sink raises m_out_tready, with probability P_x/256 per cycle from a seeded 32-bit LFSR;
// a source keeps tvalid and its beat until the transfer.
// Throughout: no handshake signal reads X after reset, no query of a window transfers before
// its last key and no key before the previous window's last query, no output beat is missing
// or extra, and a watchdog fails the run after STALL cycles without any transfer.
`timescale 1ns / 1ps

module @TOP@_tb;
    parameter KV_FILE = "@TOP@_kv.hex";
    parameter Q_FILE = "@TOP@_q.hex";
    parameter OUT_FILE = "@TOP@_out.hex";
    parameter LATENCY_FILE = "@TOP@_latency.hex";
    // LFSR seeds (non-zero) and valid/ready probabilities in 256ths of phase 2
    parameter [31:0] SEED_KV = 32'h@SEED_KV@;
    parameter [31:0] SEED_Q = 32'h@SEED_Q@;
    parameter [31:0] SEED_OUT = 32'h@SEED_OUT@;
    parameter [8:0] P_KV = 9'd@P_KV@;
    parameter [8:0] P_Q = 9'd@P_Q@;
    parameter [8:0] P_OUT = 9'd@P_OUT@;
    parameter STALL = @STALL@;

    localparam D = @D@;              // elements per vector
    localparam W = @W@;              // bits per element
    localparam DW = D * W;
    localparam WINDOWS = @WINDOWS@;
    localparam N_KV = @N_KV@;         // key beats in all
    localparam N_Q = @N_Q@;          // queries (and outputs) in all
    localparam N_KV0 = @N_KV0@;        // of which in phase 1
    localparam N_Q0 = @N_Q0@;

    reg [2*DW:0] kv_mem [0:N_KV-1];
    reg [DW:0] q_mem [0:N_Q-1];
    reg [DW+1:0] out_mem [0:N_Q-1];
    reg [31:0] lat_mem [0:N_Q-1];
    reg [31:0] q_edge [0:N_Q-1];     // edge at which query i transferred
    reg q_alone [0:N_Q-1];           // ... with no earlier query of its window in flight

    reg clk, rst, kv_valid, kv_last, q_valid, q_last, out_ready;
    reg [2*DW-1:0] kv_data;
    reg [DW-1:0] q_data;
    wire kv_ready, q_ready, out_valid, out_last, out_user;
    wire [DW-1:0] out_data;

    @TOP@ dut (
        .clk(clk), .rst(rst),
        .s_kv_tdata(kv_data), .s_kv_tvalid(kv_valid), .s_kv_tready(kv_ready),
        .s_kv_tlast(kv_last),
        .s_q_tdata(q_data), .s_q_tvalid(q_valid), .s_q_tready(q_ready), .s_q_tlast(q_last),
        .m_out_tdata(out_data), .m_out_tvalid(out_valid), .m_out_tready(out_ready),
        .m_out_tlast(out_last), .m_out_tuser(out_user));

    // 8 steps of a 32-bit Galois LFSR, x^32 + x^22 + x^2 + x + 1
    function [31:0] lfsr8;
        input [31:0] s;
        integer i;
        begin
            lfsr8 = s;
            for (i = 0; i < 8; i = i + 1)
                lfsr8 = lfsr8[0] ? (lfsr8 >> 1) ^ 32'h80200003 : lfsr8 >> 1;
        end
    endfunction

    reg [31:0] lfsr_kv, lfsr_q, lfsr_out;
    reg [31:0] edges, idle, kv_i, q_i, out_i, kv_win, q_win, q_first, checked, drain;
    reg kv_x, q_x, out_x, phase2;

    // whether an idle source offers its beat i on the next cycle: always in phase 1 (beats
    // below n1), in phase 2 (beats below n2) when the random byte r is below p
    function offer;
        input [31:0] i, n1, n2;
        input [7:0] r;
        input [8:0] p;
        offer = i < (phase2 ? n2 : n1) && (!phase2 || {1'b0, r} < p);
    endfunction

    task fail;
        begin
            $display("FAIL");
            $fatal(1, "@TOP@_tb: mismatch (see the line above FAIL)");
        end
    endtask

    always #5 clk = ~clk;

    // One process: it samples every handshake at the rising edge (the values the core
    // sees there) and drives the inputs for the next cycle at the falling edge.
    initial begin
        clk = 1'b0; rst = 1'b1; out_ready = 1'b1;
        kv_valid = 1'b0; kv_last = 1'b0; kv_data = {2*DW{1'b0}};
        q_valid = 1'b0; q_last = 1'b0; q_data = {DW{1'b0}};
        $readmemh(KV_FILE, kv_mem);
        $readmemh(Q_FILE, q_mem);
        $readmemh(OUT_FILE, out_mem);
        $readmemh(LATENCY_FILE, lat_mem);
        if ((^kv_mem[N_KV-1]) === 1'bx || (^q_mem[N_Q-1]) === 1'bx
                || (^out_mem[N_Q-1]) === 1'bx || (^lat_mem[N_Q-1]) === 1'bx) begin
            $display("cannot read the vectors %0s, %0s, %0s, %0s: run from their folder",
                     KV_FILE, Q_FILE, OUT_FILE, LATENCY_FILE);
            fail;
        end
        lfsr_kv = SEED_KV; lfsr_q = SEED_Q; lfsr_out = SEED_OUT;
        edges = 0; idle = 0; kv_i = 0; q_i = 0; out_i = 0; kv_win = 0; q_win = 0; q_first = 0;
        checked = 0; drain = 0; phase2 = 1'b0;
        repeat (4) @(posedge clk);
        @(negedge clk) rst = 1'b0;
        forever begin
            @(posedge clk);
            edges = edges + 1;
            if ((^{kv_ready, q_ready, out_valid}) === 1'bx) begin
                $display("edge %0d: X on s_kv_tready %b, s_q_tready %b or m_out_tvalid %b",
                         edges, kv_ready, q_ready, out_valid);
                fail;
            end
            kv_x = kv_valid && kv_ready;
            q_x = q_valid && q_ready;
            out_x = out_valid && out_ready;
            // protocol (SPEC §4), with the window counts before this edge
            if (q_x && kv_win <= q_win) begin
                $display("edge %0d: query %0d (window %0d) accepted before its last key",
                         edges, q_i, q_win);
                fail;
            end
            if (kv_x && q_win < kv_win) begin
                $write("edge %0d: key beat %0d (window %0d) accepted ", edges, kv_i, kv_win);
                $display("before the previous window's last query");
                fail;
            end
            if (out_x) begin
                if (out_i == N_Q) begin
                    $display("edge %0d: an output beat more than the %0d expected", edges,
                             N_Q);
                    fail;
                end else if ({out_user, out_last, out_data} !== out_mem[out_i]) begin
                    $write("edge %0d: output %0d is tuser %b tlast %b data %h, ", edges,
                           out_i, out_user, out_last, out_data);
                    $display("expected tuser %b tlast %b data %h", out_mem[out_i][DW+1],
                             out_mem[out_i][DW], out_mem[out_i][DW-1:0]);
                    fail;
                end else if (out_i < N_Q0 && q_alone[out_i]) begin
                    if (edges - q_edge[out_i] != lat_mem[out_i]) begin
                        $write("edge %0d: output %0d came %0d edges after its query, ",
                               edges, out_i, edges - q_edge[out_i]);
                        $display("the manifest's latency is %0d", lat_mem[out_i]);
                        fail;
                    end
                    checked = checked + 1;
                end
                out_i = out_i + 1;
            end
            if (q_x) begin
                q_edge[q_i] = edges;
                q_alone[q_i] = q_i == q_first || out_i == q_i;
                q_i = q_i + 1;
                if (q_last) begin
                    q_win = q_win + 1;
                    q_first = q_i;
                end
            end
            if (kv_x) begin
                kv_i = kv_i + 1;
                if (kv_last) kv_win = kv_win + 1;
            end
            idle = kv_x || q_x || out_x ? 0 : idle + 1;
            if (idle > STALL) begin
                $write("edge %0d: no transfer for %0d cycles (watchdog): ", edges, STALL);
                $display("%0d/%0d key beats, %0d/%0d queries, %0d/%0d outputs", kv_i, N_KV,
                         q_i, N_Q, out_i, N_Q);
                fail;
            end
            if (out_i == N_Q0) phase2 = 1'b1;
            // the sources and the sink for the next cycle
            @(negedge clk);
            lfsr_kv = lfsr8(lfsr_kv);
            lfsr_q = lfsr8(lfsr_q);
            lfsr_out = lfsr8(lfsr_out);
            if (kv_x || !kv_valid) begin
                kv_valid = offer(kv_i, N_KV0, N_KV, lfsr_kv[7:0], P_KV);
                if (kv_valid) {kv_last, kv_data} = kv_mem[kv_i];
            end
            if (q_x || !q_valid) begin
                q_valid = offer(q_i, N_Q0, N_Q, lfsr_q[7:0], P_Q);
                if (q_valid) {q_last, q_data} = q_mem[q_i];
            end
            out_ready = !phase2 || out_i == N_Q || {1'b0, lfsr_out[7:0]} < P_OUT;
            if (out_i == N_Q) begin
                // all outputs in: a few more edges in which no output may appear
                drain = drain + 1;
                if (drain == 16) begin
                    if (checked == 0) begin
                        $display("no output of phase 1 had its latency checked");
                        fail;
                    end
                    $write("PASS: %0d windows, %0d key beats, %0d queries in %0d edges, ",
                           WINDOWS, N_KV, N_Q, edges);
                    $display("every output as expected; latency checked on %0d outputs",
                             checked);
                    $finish;
                end
            end
        end
    end
endmodule
"""
