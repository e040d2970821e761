"""The board top: the hamattn core inside a self-contained test pattern for a real FPGA board
(built by :mod:`hamattn.synth.board`).

The core has far more ports than a board has pins, so :class:`BoardTop` wraps it in a
self-contained test pattern:

* **stimulus** -- a free-running xorshift32 generator draws the window shapes: n keys
  (1 .. 2^ceil(log2 N), and one window in eight N more, so that windows of more than N keys
  and ``m_out_tuser`` are exercised), then 1..4 queries, each stream ending with ``tlast``.
  The key, the value and the query come from a 32-bit register loaded with 32 fresh
  pseudo-random bits at every accepted beat (data only change after a transfer, as
  AXI4-Stream asks), spread over their d·w bits as rotations of it XORed with constants.
  ``m_out_tready`` (a flip-flop) is high, or random while the button (synchronised by two
  flip-flops) is held.
* **observation** -- every output bit of the core reaches a LED through registers:
  LED 0 is the running parity of every transferred output beat (all ``m_out_tdata`` bits,
  ``tlast`` and ``tuser``, XOR-reduced in 16-bit chunks, then in registered stages of at
  most 4 bits, then accumulated);
  LED 1 the running parity of ``s_kv_tready``, ``s_q_tready`` and ``m_out_tvalid``; a third
  LED, where the board has one, the top bit of a counter of output beats (a visible
  blink while outputs flow). Nothing of the core can be optimised away.
* **clock** -- the board's default clock (12 MHz on the iCEBreaker, 25 MHz on the ULX3S) and
  the platform's power-on reset. The Fmax reported is nextpnr's, not the board clock.
"""

from __future__ import annotations

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import io

from .core import AxiStreamCore
from .tree import twin

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The core with a seeded stimulus generator and registered XOR-reduced outputs (see the
    module docstring). Without a platform (simulation) the LEDs are ``self.leds`` and the
    button ``self.button``; with one they are the board's ``led`` and button resources."""

    def __init__(self, cfg, *, seed=0x2545F491, leds=2):
        if not 1 <= seed < 2 ** 32:
            raise ValueError(f"seed {seed} is not allowed: 1 .. 2**32-1 (xorshift32 state)")
        self.cfg = cfg
        self.seed = seed
        self.core = AxiStreamCore(cfg.plan)
        self.leds = Signal(leds)
        self.button = Signal()

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.core = core = self.core
        dw = cfg.d * cfg.w

        # ---- pseudo-random source: xorshift32, one step per cycle
        rng = Signal(32, init=self.seed)
        x = rng ^ (rng << 13)[:32]
        x = x ^ (x >> 17)
        x = x ^ (x << 5)[:32]
        m.d.sync += rng.eq(x)

        # ---- data: a 32-bit word, loaded from the generator at every accepted beat, spread
        # over the d·w bits of each input: word i of 32 bits is the word rotated by a step of
        # its own and XORed with a constant of its own (the key, the value and the query each
        # their own rotations and constants). Every input bit is driven by a register that
        # changes at every beat, no two words alike, and the harness holds 32 flip-flops
        # behind the transfer's enable, not d·w (on an iCE40 a flip-flop costs a logic cell,
        # and a d·w-wide enable a global buffer behind the core's ready)
        word = Signal(32, init=0x9E3779B9)

        def spread(k):
            """d·w bits of the word: 32-bit piece i rotated by 5·i + 11·k, XORed with a
            constant of (i, k)."""
            pieces = [word.rotate_left((5 * i + 11 * k) % 32)
                      ^ Const((0x9E3779B9 * (3 * i + k + 1)) & 0xFFFFFFFF, 32)
                      for i in range(-(-dw // 32))]
            return Cat(*pieces)[:dw]

        # ---- window shapes. The handshakes reach the counters through one clock enable:
        # a counter's next value (count down, or a new draw, registered) is chosen by the
        # phase alone, and only the enable reads the core's ready. Every test of a counter
        # or a draw is a flip-flop written beside it from the value it takes, so that no
        # compare stands before a tlast or a valid: a draw's tests (== 1, == 2) come from
        # the generator's bits beside the draw; a counter's == 1 flag (its tlast) from the
        # draw's or from its own == 2 flag, and that one from the draw's or from a compare
        # of the counter with 3 (which ends at that flag alone)
        N = cfg.N
        nb = (N - 1).bit_length()           # n - 1 in 0 .. 2^nb - 1 (>= N - 1)
        n_bits = (2 ** nb + N).bit_length()
        low = rng[:nb] if nb else Const(0, 1)
        big = rng[29:32] == 7               # 1 in 8: more than N keys

        def n_is(v):
            """The draw 1 + low + (N if big else 0) equals v, from the generator's bits."""
            terms = [(low == v - 1 - o * N) & (big if o else ~big) for o in (0, 1)
                     if 0 <= v - 1 - o * N < 2 ** nb]
            return Cat(*terms).any() if terms else Const(0, 1)

        def draw(name, width, value, equals):
            """A registered draw (rng changes every cycle): (value, == 1, == 2) flip-flops."""
            reg = Signal(width, init=1, name=name)
            is1, is2 = Signal(init=1, name=f"{name}_is1"), Signal(name=f"{name}_is2")
            m.d.sync += [reg.eq(value), is1.eq(equals(1)), is2.eq(equals(2))]
            return reg, is1, is2

        def countdown(name, width, drawn, load, fire):
            """A counter (1 after reset) loaded with the draw ``drawn`` where ``load`` (a
            flip-flop) and counted down where ``fire`` while it is not 1 (never both);
            returns its == 1 flag and that flag's twin (the harness's, and the core's
            tlast)."""
            value, value1, value2 = drawn
            left = Signal(width, init=1, name=f"{name}_left")
            is2 = Signal(name=f"{name}_left2")
            is1 = Signal(init=1, name=f"{name}_last")
            step = fire & ~is1
            with m.If(load):
                m.d.sync += [left.eq(value), is2.eq(value2), is1.eq(value1)]
            with m.Elif(step):
                m.d.sync += [left.eq(left - 1), is2.eq(left == 3), is1.eq(is2)]
            return is1, twin(m, is1, Mux(load, value1, is2), en=load | step,
                             name=f"{name}_last_core")

        # the phase: `keys` (1: the keys of the window) is the harness's own; the core's
        # s_kv_tvalid and s_q_tvalid are flip-flops of their own (a producer per stream
        # drives its valid; s_kv_tvalid is the twin of `keys`), and so are the tlasts
        # (twins): no input of the core also fans out to the harness's logic
        keys = Signal(init=1)
        q_valid = Signal(name="q_valid")
        queries = ~keys                      # 0: keys of the window, 1: its queries
        kv_fire = keys & core.s_kv_tready
        q_fire = queries & core.s_q_tready
        # (a beat transfers: the ready of the channel that is valid, s_kv in the key phase and
        # s_q in the query phase)
        with m.If(Mux(queries, core.s_q_tready, core.s_kv_tready)):
            m.d.sync += word.eq(rng)
        # keys: counted down by the keys but the last, and loaded with a draw in every cycle
        # of the query phase (their tlast is not looked at then): at the phase's end, the
        # last query's transfer, it takes that cycle's draw, and the load is the phase (a
        # flip-flop), not a transfer. Queries: likewise, loaded in the key phase
        last_key, kv_last = countdown(
            "keys", n_bits, draw("new_n", n_bits, 1 + low + Mux(big, N, 0), n_is),
            queries, kv_fire)
        last_q, q_last = countdown(
            "queries", 3, draw("new_q", 3, 1 + rng[26:28], lambda v: rng[26:28] == v - 1),
            keys, q_fire)
        turn = (q_fire & last_q) | (kv_fire & last_key)        # the phase's last beat
        with m.If(turn):
            m.d.sync += [keys.eq(~keys), q_valid.eq(keys)]
        kv_valid = twin(m, keys, ~keys, en=turn, name="kv_valid")
        m.d.comb += [
            core.s_kv_tdata.eq(Cat(spread(0), spread(1))),
            core.s_kv_tvalid.eq(kv_valid),
            core.s_kv_tlast.eq(kv_last),
            core.s_q_tdata.eq(spread(2)),
            core.s_q_tvalid.eq(q_valid),
            core.s_q_tlast.eq(q_last),
        ]
        # the button is asynchronous: two flip-flops bring it into the clock domain, and
        # m_out_tready is a flip-flop, as a registered consumer would drive it (a twin of the
        # harness's, which counts and checks the output beats)
        button_sync = Signal(2)
        out_ready = Signal(init=1)
        ready_next = ~button_sync[1] | rng[24]
        m.d.sync += [button_sync.eq(Cat(self.button, button_sync[0])), out_ready.eq(ready_next)]
        m.d.comb += core.m_out_tready.eq(twin(m, out_ready, ready_next, name="out_ready_core"))

        # ---- observation: every output bit reaches a LED through registers
        out_fire = core.m_out_tvalid & out_ready
        beat = Cat(core.m_out_tdata, core.m_out_tlast, core.m_out_tuser)
        chunks = [beat[i:i + 16] for i in range(0, len(beat), 16)]
        part = Signal(len(chunks))           # stage 1: parity of each 16-bit chunk
        part_fire = Signal()
        m.d.sync += [part.eq(Cat(*[c.xor() for c in chunks])), part_fire.eq(out_fire)]
        # then registered stages, each the parity of groups of at most 4 bits (one LUT4;
        # the first stage's with the beat's fire, 0 where no beat), until at most 3 bits are
        # left: the accumulating flip-flop is then one LUT of them and itself (the LEDs'
        # pins are far from the core: a deep parity tree there was a routing path)
        bits, fire = part, part_fire
        stage = 2
        while len(bits) > 3 or fire is not None:
            groups = [bits[i:i + 4] for i in range(0, len(bits), 4)] if fire is None else \
                [bits[i:i + 3] for i in range(0, len(bits), 3)]
            nxt = Signal(len(groups), name=f"part{stage}")
            m.d.sync += nxt.eq(Cat(*[g.xor() & (1 if fire is None else fire)
                                     for g in groups]))
            bits, fire, stage = nxt, None, stage + 1
        par_data = Signal()
        m.d.sync += par_data.eq(par_data ^ bits.xor())
        par_hs = Signal()
        m.d.sync += par_hs.eq(par_hs ^ core.s_kv_tready ^ core.s_q_tready ^ core.m_out_tvalid)
        beats = Signal(21)
        with m.If(out_fire):
            m.d.sync += beats.eq(beats + 1)
        leds = [par_data, par_hs, beats[-1]][:len(self.leds)]
        m.d.comb += self.leds.eq(Cat(*leds))

        if platform is not None:
            for i in range(len(self.leds)):
                buf = io.Buffer("o", platform.request("led", i, dir="-"))
                m.submodules[f"led_{i}"] = buf
                m.d.comb += buf.o.eq(self.leds[i])
            name, number = getattr(platform, "_hamattn_button", ("button", 0))
            m.submodules.button = buf = io.Buffer("i", platform.request(name, number, dir="-"))
            m.d.comb += self.button.eq(buf.i)
        return m
