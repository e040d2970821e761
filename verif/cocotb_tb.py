"""cocotb testbench of the generated Verilog top (SPEC §4), run by :mod:`.simulate`.

Parameters arrive in environment variables set by :func:`hamattn.verif.simulate.run_sim`:

``HAMATTN_CFG``       JSON of ``CoreConfig.params()`` (rebuilt with ``CoreConfig.create``)
``HAMATTN_MANIFEST``  path of the manifest written beside the Verilog (cross-checked)
``HAMATTN_SEED``      stimulus seed; each scenario draws from ``default_rng([seed, crc32(name)])``
                      so that a scenario replays alone with the same beats and patterns
``HAMATTN_WINDOWS``   windows per phase of a scenario
``HAMATTN_SOAK_QUERIES``  query beats of the soak
``HAMATTN_DATA``      ``.npz`` of windows (keys, values, queries) for the ``data`` scenario
``HAMATTN_STATS``     file to which each scenario appends one JSON line (cycles, time, error)
``HAMATTN_CLOCKING``  ``pulse`` or ``gpi`` (see :class:`Bench`); ``HAMATTN_FAST=0`` turns off
                      the fast-forward; ``HAMATTN_MUTATE=1`` corrupts beats (self-test)

Scenarios: ``full`` (full throughput: exact beats, latency, query interval), ``random``
(seeded valid/ready probabilities on all three channels), ``overflow`` (windows of more than
N keys: tuser, and the next window normal), ``single`` (one-key windows), ``back_to_back``
(one-query windows in a row), ``extreme`` (every element at the range ends, all keys equal),
``reset`` (reset for 1-2 cycles among the keys, among the queries or with outputs in flight,
then a fresh window list exactly and on time), ``soak`` (>= 100,000 queries), ``data``
(the windows of the file HAMATTN_DATA, e.g. real activations; soak and data on request only).

One cocotb test per scenario (``scenario_<name>``); the runner selects them by name. The
stimulus and every check come from :mod:`.scenario` (golden model, protocol, timing); this
module only drives the pins. One loop drives all three channels and samples every handshake
once per cycle (see :class:`Bench` for how it meets each rising edge with one wake-up), with
the semantics of :mod:`.amaranth_driver`: three independent seeded sources/sinks, a source
keeps ``valid`` and its beat until the transfer, the same random draws in the same order;
so the same checks apply.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zlib

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import Immediate
from cocotb.simtime import convert, get_sim_time
from cocotb.triggers import First, RisingEdge, Timer
from cocotb.types import Logic

from ..config import CoreConfig
from .axis import Draws, Sink, Source
from .scenario import (Observed, Window, check_beats, check_q_interval, check_timing,
                       expected_beats, kv_stream, q_stream, random_windows, unpack_vector)

__all__ = ["SCENARIOS", "DEFAULT_SCENARIOS", "Bench"]

#: every scenario, in the order a full run executes them
SCENARIOS = ("full", "random", "overflow", "single", "back_to_back", "extreme", "reset", "soak",
             "data")
#: what ``hamattn sim`` runs (the soak and the windows of a file only on request)
DEFAULT_SCENARIOS = SCENARIOS[:-2]
#: HAMATTN_MUTATE=1 corrupts the last output beat of every run before the checks: the
#: pytest suite uses it to prove that a wrong beat fails the run and prints a replay command
MUTATE = os.environ.get("HAMATTN_MUTATE", "0") == "1"


def progress(msg):
    """A line that :func:`~hamattn.verif.simulate.run_sim` forwards while a run goes on."""
    print(f"hamattn-progress: {msg}", flush=True)


class Bench:
    """The pins of one core and a cycle loop that drives them.

    Two ways to clock the core (the same transfers on the same cycles either way; the suite
    checks it):

    ``pulse`` (Verilator without waves, where cocotb's writes are inertial): one wake-up per
    cycle, a :class:`Timer` of one period. At the wake-up nothing has been evaluated since
    the last inputs were applied, so ``tready``/``tvalid`` read there are the settled values
    that this rising edge samples (including any combinational path from this cycle's
    inputs, ``m_out_tready`` -> ``s_*_tready``); then ``clk`` is set to 1 at once (no-delay
    write) and back to 0 together with the next cycle's inputs by inertial writes, which the
    simulator applies only after evaluating the edge. Two evaluations per cycle, one Python
    wake-up: about twice the speed of ``gpi``. ``clk`` pulses within one timestep, so a
    waveform would not show it: runs with waves use ``gpi``.

    ``gpi``: a GPI clock of 10 ns toggles ``clk``; the loop wakes twice per cycle, both times
    in the timestep of a clock toggle and before the simulator evaluates it:

    * at the falling edge it writes this cycle's inputs (evaluated together with the fall:
      one evaluation of the design instead of two);
    * at the rising edge it reads ``tready``/``tvalid``: nothing has been evaluated since the
      falling edge, so these are the settled values that the edge samples, including any
      combinational path from this cycle's inputs (``m_out_tready`` -> ``s_*_tready``).

    Fast-forward: when no input can change on the next cycle (each source holds ``valid`` or
    has nothing left, ``m_out_tready`` is always high) and nothing transferred, the loop
    sleeps until ``s_kv_tready``, ``s_q_tready`` or ``m_out_tvalid`` changes, then resumes
    on the cycle after that edge; the random draws of the skipped cycles are consumed, so a
    run is cycle-for-cycle the same as without it (``fast=False``). ``gpi`` only.

    Invariant between runs: the bench is at the *drive point* of a cycle, where the next
    inputs can be written (``gpi``: its falling edge; ``pulse``: right after the previous
    edge was pulsed)."""

    PERIOD_NS = 10

    def __init__(self, dut, cfg, fast=True, clocking=None):
        self.dut = dut
        self.cfg = cfg
        if clocking is None:
            clocking = "pulse" if _trusted_writes() else "gpi"
        if clocking not in ("pulse", "gpi"):
            raise ValueError(f"clocking {clocking!r}: 'pulse' or 'gpi'")
        self.clocking = clocking
        self.pulse = clocking == "pulse"
        self.fast = fast and not self.pulse
        self.clk = dut.clk
        self.rst = dut.rst
        self.kv_data, self.kv_valid, self.kv_ready, self.kv_last = (
            dut.s_kv_tdata, dut.s_kv_tvalid, dut.s_kv_tready, dut.s_kv_tlast)
        self.q_data, self.q_valid, self.q_ready, self.q_last = (
            dut.s_q_tdata, dut.s_q_tvalid, dut.s_q_tready, dut.s_q_tlast)
        self.out_data, self.out_valid, self.out_ready, self.out_last, self.out_user = (
            dut.m_out_tdata, dut.m_out_tvalid, dut.m_out_tready, dut.m_out_tlast,
            dut.m_out_tuser)
        self.cycles = 0          # clock cycles driven so far (resets included)
        self.skipped = 0         # of which fast-forwarded
        self.loop_s = 0.0        # wall time spent in the cycle loops
        self.loop_cpu_s = 0.0    # CPU time of this process (Python and the model) in them
        self.digest = hashlib.sha256()   # of every Observed (fast-forward equivalence)
        # pins read and written through cocotb's public value API, each as a bound
        # function made once (see _bit_reader/_bit_writer/_vec_writer)
        self.rd_kv_ready, self.rd_q_ready, self.rd_out_valid = (
            _bit_reader(h) for h in (self.kv_ready, self.q_ready, self.out_valid))
        self.wr_kv_valid, self.wr_q_valid, self.wr_out_ready, self.wr_kv_last, \
            self.wr_q_last = (_bit_writer(h) for h in (
                self.kv_valid, self.q_valid, self.out_ready, self.kv_last, self.q_last))
        self.wr_kv_data, self.wr_q_data = (_vec_writer(h) for h in (self.kv_data, self.q_data))
        self.rd_out_data, self.rd_out_last, self.rd_out_user = (
            _bit_reader(h) for h in (self.out_data, self.out_last, self.out_user))
        self._half = Timer(self.PERIOD_NS // 2, "ns")
        self._period = Timer(self.PERIOD_NS, "ns")
        self._wait = self._period if self.pulse else self._half     # drive point -> edge
        self._clk_edge = _pulse(self.clk)
        self._period_steps = convert(self.PERIOD_NS, "ns", to="step")
        self._rise0 = 0          # sim time (steps) of the rising edge of bench cycle 0

    async def start(self):
        """Start the clock and reset the core; leaves the bench at a drive point."""
        for h in (self.kv_data, self.kv_last, self.q_data, self.q_last, self.kv_valid,
                  self.q_valid, self.out_ready):
            h.value = 0
        self.rst.value = 1
        if self.pulse:
            self.clk.value = 0
            await self._period
            self._edge()
        else:
            Clock(self.clk, self.PERIOD_NS, unit="ns").start(start_high=False)
            await RisingEdge(self.clk)
            self._rise0 = get_sim_time("step")
            await self._half                              # at a falling edge
        await self.reset(2)

    def _edge(self):
        """``pulse``: the rising edge of this timestep, then ``clk`` low again after it."""
        self._clk_edge()

    async def _next_drive_point(self):
        """From the sampling point of a cycle (just before its edge) to the next drive
        point."""
        if self.pulse:
            self._edge()
        else:
            await self._half

    async def reset(self, cycles=2):
        """From a drive point: ``rst`` high for ``cycles`` rising edges with every valid and
        ready low; returns at the drive point after the last of them, ``rst`` low."""
        self.rst.value = 1
        self.kv_valid.value = 0
        self.q_valid.value = 0
        self.out_ready.value = 0
        for _ in range(cycles):
            await self._wait
            await self._next_drive_point()
        self.rst.value = 0
        self.cycles += cycles

    def max_cycles(self, windows, p_kv, p_q, p_out):
        """A generous bound (as in :mod:`.amaranth_driver`) before a run is a hang."""
        cfg = self.cfg
        n_kv = sum(w.n_keys for w in windows)
        n_q = sum(len(w.queries) for w in windows)
        per_q = cfg.at(cfg.latency, cfg.N) + cfg.at(cfg.q_interval, cfg.N)
        per_kv = cfg.at(cfg.kv_interval, 0)         # G (·R) cycles per key when folded
        return int((n_kv * per_kv + n_q * per_q + 50) * 3 / min(p_kv, p_q, p_out)) + 200

    async def run(self, windows, draw, p_kv=1.0, p_q=1.0, p_out=1.0, *, stop=None,
                  max_cycles=None):
        """Offer every beat of ``windows``; take outputs until all expected ones arrived, then
        keep ``m_out_tready`` high for as many cycles as one more output could take, so that
        an extra beat would be seen. ``stop(kv, q, sink)``, called after each cycle, ends the
        run early (the caller then resets the core). Starts and ends at a falling edge;
        cycle 0 is the first cycle of this run. Returns an :class:`~.scenario.Observed`."""
        cfg = self.cfg
        d, w = cfg.d, cfg.w
        kv = Source(kv_stream(cfg, windows), p_kv, draw)
        qs = Source(q_stream(cfg, windows), p_q, draw)
        sink = Sink(p_out, draw)
        n_out = sum(len(win.queries) for win in windows)
        if max_cycles is None:
            max_cycles = self.max_cycles(windows, p_kv, p_q, p_out)
        drain = cfg.at(cfg.latency, cfg.N) + cfg.at(cfg.q_interval, cfg.N) + 4
        wr_kv_data, wr_q_data = self.wr_kv_data, self.wr_q_data
        rd_out_data, rd_out_last, rd_out_user = (self.rd_out_data, self.rd_out_last,
                                                 self.rd_out_user)
        kv_ready, q_ready, out_valid = self.kv_ready, self.q_ready, self.out_valid
        rd_kv_ready, rd_q_ready, rd_out_valid = (self.rd_kv_ready, self.rd_q_ready,
                                                 self.rd_out_valid)
        wr_kv_valid, wr_q_valid, wr_out_ready, wr_kv_last, wr_q_last = (
            self.wr_kv_valid, self.wr_q_valid, self.wr_out_ready, self.wr_kv_last,
            self.wr_q_last)

        def bad(name, v):
            return AssertionError(f"{name} is {v!r} (not 0 or 1) on cycle {cycle}")

        def read_out():
            data, last, user = rd_out_data(), rd_out_last(), rd_out_user()
            try:
                return unpack_vector(int(data, 2), d, w), int(last, 2), int(user, 2)
            except ValueError:
                raise AssertionError(f"output beat on cycle {cycle} has unknown bits: "
                                     f"tdata={data} tlast={last} tuser={user}") from None

        half = self._half
        wait = self._wait
        pulse = self.pulse
        clk_edge = self._clk_edge
        period = self._period_steps
        # cycle numbers of this run from simulation time: the rising edge of cycle c
        base = (get_sim_time("step") - self._rise0) // period + 1
        fast = self.fast and stop is None
        last_kv_v = last_q_v = last_rdy = -1
        end = max_cycles
        draining = n_out == 0
        if draining:
            end = drain
        t0 = time.perf_counter()
        c0 = time.process_time()
        cycle = 0
        try:
            while True:
                # ---- falling edge: drive this cycle's inputs (only the pins that change)
                if kv.step():
                    data, last = kv.beat
                    wr_kv_data(data)
                    wr_kv_last(last)
                if qs.step():
                    data, last = qs.beat
                    wr_q_data(data)
                    wr_q_last(last)
                rdy = sink.step()
                if kv.valid != last_kv_v:
                    wr_kv_valid(kv.valid)
                    last_kv_v = kv.valid
                if qs.valid != last_q_v:
                    wr_q_valid(qs.valid)
                    last_q_v = qs.valid
                if rdy != last_rdy:
                    wr_out_ready(rdy)
                    last_rdy = rdy
                # ---- rising edge, before it is evaluated: the settled handshakes
                await wait
                busy = False                 # an output valid or a transfer this cycle
                v = rd_out_valid()
                if v != "0":
                    if v != "1":
                        raise bad("m_out_tvalid", v)
                    if sink.handshake(1, cycle, read_out) and not draining \
                            and len(sink.beats) >= n_out:
                        draining = True          # every output is in: drain, then stop
                        end = cycle + drain
                        sink.p = 1.0
                    busy = True
                if kv.valid:
                    v = rd_kv_ready()
                    if v == "1":
                        busy = kv.handshake(1, cycle)
                    elif v != "0":
                        raise bad("s_kv_tready", v)
                if qs.valid:
                    v = rd_q_ready()
                    if v == "1":
                        busy = qs.handshake(1, cycle)
                    elif v != "0":
                        raise bad("s_q_tready", v)
                if stop is not None and stop(kv, qs, sink):
                    await self._next_drive_point()
                    break
                if cycle >= end:
                    await self._next_drive_point()
                    if draining:
                        break
                    raise AssertionError(
                        f"timeout after {max_cycles} cycles: {len(sink.beats)} of {n_out} "
                        f"outputs, {kv.index}/{len(kv.beats)} keys, {qs.index}/"
                        f"{len(qs.beats)} queries accepted (p_kv={p_kv}, p_q={p_q}, "
                        f"p_out={p_out})")
                if fast and not busy and sink.p == 1.0 and (kv.valid or kv.done) \
                        and (qs.valid or qs.done) and end - cycle > 2:
                    # nothing can change until the core changes an output: sleep until then
                    limit = Timer((end - cycle) * period - period // 2, "step")
                    trig = await First(kv_ready.value_change, q_ready.value_change,
                                       out_valid.value_change, limit)
                    if trig is limit:            # at the falling edge before cycle `end`
                        nxt = end
                    else:                        # just after the rising edge of cycle c
                        nxt = (get_sim_time("step") - self._rise0) // period - base + 1
                        await half
                    draw.skip(nxt - cycle - 1)   # the skipped cycles' ready draws
                    self.skipped += nxt - cycle - 1
                    cycle = nxt
                else:
                    if pulse:                    # as _edge()
                        clk_edge()
                    else:
                        await half
                    cycle += 1
        finally:
            self.cycles += cycle + 1
            self.loop_s += time.perf_counter() - t0
            self.loop_cpu_s += time.process_time() - c0
        obs = Observed(kv.cycles, qs.cycles, sink.cycles, sink.beats, sink.valid_cycles)
        self.digest.update(repr(obs).encode())
        if MUTATE and obs.out_beats:              # self-test of the checks (see below)
            data, last, user = obs.out_beats[-1]
            obs.out_beats[-1] = ((data[0] ^ 1,) + data[1:], last, user)
        return obs


def _trusted_writes():
    """cocotb writes immediately (Verilator) rather than queueing for ReadWrite (Icarus)."""
    return os.environ.get("COCOTB_TRUST_INERTIAL_WRITES", "").strip().lower() in (
        "1", "true", "yes", "on")


def _bit_reader(h):
    """() -> the pin's value as a string of '0', '1' or other logic characters."""
    get = h.get
    return lambda: str(get())


#: the values of a 1-bit pin, made once (cocotb converts an int on every write)
_BITS = (Logic(0), Logic(1))


def _bit_writer(h):
    """(0 or 1) -> None for a 1-bit pin: cocotb's deposit (``.value = v``), immediate when
    writes are trusted (Verilator), else queued for the ReadWrite phase (Icarus)."""
    set_ = h.set
    return lambda v: set_(_BITS[v])


def _vec_writer(h):
    """(unsigned int) -> None for a vector pin, as :func:`_bit_writer`."""
    return h.set


def _pulse(clk):
    """() -> None: a rising edge of ``clk`` now (``Immediate``), then ``clk`` low again by a
    deposit, inertial: after the edge is evaluated (``pulse`` clocking: trusted writes)."""
    high = Immediate(1)
    set_ = clk.set

    def pulse():
        set_(high)
        set_(0)
    return pulse


# --------------------------------------------------------------------------- scenarios

def _probs(rng):
    """Seeded valid/ready probabilities of one random phase: (p_kv, p_q, p_out)."""
    return tuple(round(float(x), 2) for x in rng.uniform(0.15, 1.0, 3))


def check_prefix(cfg, windows, obs):
    """Outputs of a run cut short by a reset: a prefix of the expected beats."""
    exp = [(b.data, b.last, b.user) for b in expected_beats(cfg, windows)]
    got = obs.out_beats
    assert len(got) <= len(exp), f"{len(got)} outputs before the reset, only {len(exp)} due"
    for i, (g, e) in enumerate(zip(got, exp)):
        assert g == e, f"output beat {i} before the reset: got {g}, expected {e}"


async def _phase(b, cfg, rng, draw, windows, probs, label):
    """One run with full checks: beats always; timing when ``m_out_tready`` is always high;
    the query interval as well when every source is always valid."""
    p_kv, p_q, p_out = probs
    obs = await b.run(windows, draw, p_kv, p_q, p_out)
    try:
        check_beats(cfg, windows, obs)
        if p_out == 1.0:
            check_timing(cfg, windows, obs)
            if p_kv == p_q == 1.0:
                check_q_interval(cfg, windows, obs)
    except AssertionError as e:
        raise AssertionError(f"{label} (p_kv={p_kv}, p_q={p_q}, p_out={p_out}): {e}") from None
    return obs


async def sc_full(b, cfg, rng, n):
    draw = Draws(rng)
    wins = random_windows(cfg, rng, n, n_queries=(1, 6))
    await _phase(b, cfg, rng, draw, wins, (1.0, 1.0, 1.0), "full throughput")


async def sc_random(b, cfg, rng, n):
    draw = Draws(rng)
    probs = [_probs(rng) for _ in range(3)]
    probs.append((*_probs(rng)[:2], 1.0))          # random sources, output always ready
    for i, p in enumerate(probs):
        wins = random_windows(cfg, rng, n, n_queries=(1, 6))
        await _phase(b, cfg, rng, draw, wins, p, f"random phase {i}")


async def sc_overflow(b, cfg, rng, n):
    draw = Draws(rng)
    extra = max(2, cfg.N // 2)
    for i, p in enumerate([(1.0, 1.0, 1.0), _probs(rng)]):
        wins = (random_windows(cfg, rng, 1, n_keys=cfg.N + 1)
                + random_windows(cfg, rng, n, n_keys=(1, cfg.N + extra), n_queries=(1, 4))
                + random_windows(cfg, rng, 1, n_keys=cfg.N + extra))
        obs = await _phase(b, cfg, rng, draw, wins, p, f"overflow phase {i}")
        assert any(u for _, _, u in obs.out_beats), "no output carried tuser = 1"


async def sc_single(b, cfg, rng, n):
    draw = Draws(rng)
    for i, p in enumerate([(1.0, 1.0, 1.0), _probs(rng)]):
        wins = random_windows(cfg, rng, n, n_keys=1, n_queries=(1, 5))
        await _phase(b, cfg, rng, draw, wins, p, f"single-key phase {i}")


async def sc_back_to_back(b, cfg, rng, n):
    draw = Draws(rng)
    for i, p in enumerate([(1.0, 1.0, 1.0), (*_probs(rng)[:2], 1.0)]):
        wins = random_windows(cfg, rng, 3 * n, n_keys=(1, min(cfg.N, 3)), n_queries=1)
        await _phase(b, cfg, rng, draw, wins, p, f"back-to-back phase {i}")


async def sc_extreme(b, cfg, rng, n):
    draw = Draws(rng)
    for i, p in enumerate([(1.0, 1.0, 1.0), _probs(rng)]):
        wins = random_windows(cfg, rng, n, n_queries=(1, 5), extreme=True)
        if i == 0:                                 # every key identical: all distances tie
            k = random_windows(cfg, rng, 1, n_keys=cfg.N, n_queries=2, extreme=True)[0]
            k.keys[:] = k.keys[0]
            wins.insert(0, k)
        await _phase(b, cfg, rng, draw, wins, p, f"extreme phase {i}")


async def sc_reset(b, cfg, rng, n):
    """Reset in the middle of a window (among the keys, among the queries, or with outputs
    in flight), 1 or 2 cycles; outputs before the reset must be a prefix of the expected
    ones; afterwards a fresh window list must come out exactly (and on time)."""
    draw = Draws(rng)
    lat = cfg.at(cfg.latency, cfg.N)
    for r in range(4):
        p = (1.0, 1.0, 1.0) if r % 2 == 0 else _probs(rng)
        wins = random_windows(cfg, rng, 3, n_queries=(2, 5))
        wi = int(rng.integers(0, len(wins)))
        k0 = sum(win.n_keys for win in wins[:wi])
        q0 = sum(len(win.queries) for win in wins[:wi])
        where = ("keys", "queries", "outputs")[r % 3]
        if where == "keys":                      # after 1..n keys of window wi
            target = k0 + int(rng.integers(1, wins[wi].n_keys + 1))

            def stop(kv, qs, sink, target=target):
                return kv.index >= target
        elif where == "queries":                 # after 1..nq-1 queries of window wi
            target = q0 + int(rng.integers(1, len(wins[wi].queries)))

            def stop(kv, qs, sink, target=target):
                return qs.index >= target
        else:                                    # a query of window wi still in flight
            target = q0 + len(wins[wi].queries)
            delay = int(rng.integers(1, lat))
            state = {}

            def stop(kv, qs, sink, target=target, delay=delay, state=state):
                if qs.index >= target:
                    state["n"] = state.get("n", 0) + 1
                return state.get("n", 0) > delay
        obs = await b.run(wins, draw, *p, stop=stop)
        try:
            check_prefix(cfg, wins, obs)
        except AssertionError as e:
            raise AssertionError(f"reset {r} ({where}, p={p}): {e}") from None
        await b.reset(int(rng.integers(1, 3)))
    wins = random_windows(cfg, rng, n, n_queries=(1, 5))
    await _phase(b, cfg, rng, draw, wins, (1.0, 1.0, 1.0), "after the last reset")
    await _phase(b, cfg, rng, draw, random_windows(cfg, rng, n), _probs(rng),
                 "random after the resets")


async def sc_soak(b, cfg, rng, n):
    """>= HAMATTN_SOAK_QUERIES query beats over many windows, in chunks of random
    valid/ready probabilities (every fourth chunk at full throughput, timing checked)."""
    target = int(os.environ.get("HAMATTN_SOAK_QUERIES", "100000"))
    draw = Draws(rng)
    done = chunk = 0
    t0 = time.perf_counter()
    while done < target:
        p = (1.0, 1.0, 1.0) if chunk % 4 == 0 else _probs(rng)
        wins = random_windows(cfg, rng, max(n, 50), n_keys=(1, cfg.N + 2), n_queries=(1, 24))
        await _phase(b, cfg, rng, draw, wins, p, f"soak chunk {chunk}")
        done += sum(len(w.queries) for w in wins)
        chunk += 1
        if chunk % 10 == 0 or done >= target:
            dt = time.perf_counter() - t0
            progress(f"soak: {done}/{target} queries, {b.cycles} cycles, "
                     f"{b.cycles / max(dt, 1e-9):.0f} cycles/s")


async def sc_data(b, cfg, rng, n):
    """The windows of the ``.npz`` file named by HAMATTN_DATA (``keys``, ``values``,
    ``queries``: windows × vectors × d integers, e.g. real activations from
    :mod:`hamattn.bench.fidelity_window`): at full throughput (timing checked), then with
    seeded random valid/ready."""
    path = os.environ.get("HAMATTN_DATA")
    if not path:
        raise ValueError("scenario 'data' needs HAMATTN_DATA: an .npz file with keys, values "
                         "and queries (windows x vectors x d)")
    with np.load(path) as z:
        arrays = [np.asarray(z[name], dtype=np.int64) for name in ("keys", "values", "queries")]
    shape = (cfg.d,)
    for name, a in zip(("keys", "values", "queries"), arrays):
        if a.ndim != 3 or a.shape[2:] != shape:
            raise ValueError(f"HAMATTN_DATA {path}: {name} has shape {a.shape}, expected "
                             f"(windows, vectors, {cfg.d})")
    wins = [Window(k, v, q) for k, v, q in zip(*arrays)]
    draw = Draws(rng)
    await _phase(b, cfg, rng, draw, wins, (1.0, 1.0, 1.0), "data, full throughput")
    await _phase(b, cfg, rng, draw, wins, _probs(rng), "data, random handshakes")


_SCENARIO_FUNCS = {name: globals()[f"sc_{name}"] for name in SCENARIOS}


# --------------------------------------------------------------------------- cocotb tests

def _config():
    cfg = CoreConfig.create(**json.loads(os.environ["HAMATTN_CFG"]))
    path = os.environ.get("HAMATTN_MANIFEST")
    if path:
        with open(path) as f:
            man = json.load(f)
        for key in ("latency", "q_interval", "kv_interval"):
            assert man[key] == getattr(cfg, key), \
                f"manifest {key} {man[key]} differs from the config's {getattr(cfg, key)}"
        assert [tuple(r) for r in man["W"]] == list(cfg.W), "manifest W differs from config"
    return cfg


def scenario_rng(seed, name):
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


async def _run_scenario(dut, name):
    cfg = _config()
    seed = int(os.environ.get("HAMATTN_SEED", "0"))
    n = int(os.environ.get("HAMATTN_WINDOWS", "20"))
    b = Bench(dut, cfg, fast=os.environ.get("HAMATTN_FAST", "1") != "0",
              clocking=os.environ.get("HAMATTN_CLOCKING") or None)
    error = None
    t0 = time.perf_counter()
    try:
        await b.start()
        await _SCENARIO_FUNCS[name](b, cfg, scenario_rng(seed, name), n)
    except BaseException as e:                           # recorded, then re-raised
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        stats = os.environ.get("HAMATTN_STATS")
        if stats:
            with open(stats, "a") as f:
                f.write(json.dumps({"scenario": name, "seed": seed, "passed": error is None,
                                    "cycles": b.cycles, "skipped": b.skipped,
                                    "clocking": b.clocking,
                                    "loop_s": b.loop_s, "loop_cpu_s": b.loop_cpu_s,
                                    "digest": b.digest.hexdigest(),
                                    "wall_s": time.perf_counter() - t0,
                                    "error": error}) + "\n")


def _make_test(name):
    async def test(dut):
        await _run_scenario(dut, name)
    test.__name__ = test.__qualname__ = f"scenario_{name}"
    test.__doc__ = _SCENARIO_FUNCS[name].__doc__
    return cocotb.test()(test)


for _name in SCENARIOS:
    globals()[f"scenario_{_name}"] = _make_test(_name)
del _name
