"""The ``hamattn`` command line (SPEC §6): gen, sim, vectors, synth, sweep, fit, report,
board.

Every command takes the parameters of SPEC §1 by the same flags (``fit`` only those a fit
uses). A user mistake prints ``hamattn <command>: error: ...`` on stderr and exits 2 with no
traceback (``--debug`` shows one), before anything is built: a value out of range, a flag
that the chosen mode does not use (:func:`hamattn.config.check_given`), a missing file. A
weights file is named by an absolute path from then on, so that every later stage (a
simulator running in its build folder, a sweep worker, a printed replay command) finds it.
Ctrl-C or SIGTERM ends every child process and prints one line (exit 130, or 143 for
SIGTERM); any other failure exits 1. The reference is docs/cli.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from .. import process
from ..config import FLAGS, PARAMS, WEIGHT_SOURCES, ConfigError, CoreConfig, check_given
from ..errors import UserError
from ..rtl.plan import Timing
from ..verif.vectors import DEFAULT_WINDOWS

__all__ = ["main", "build_parser", "config_from_args", "UserError"]


def _fit_default(name):
    from ..golden.fit import fit_default
    return fit_default(name)


def _typed(kind, name, allowed, lo=None, hi=None):
    """An argparse type: ``text`` converted by ``kind`` and within ``lo``..``hi`` (either
    may be None), or an error naming the flag, the value and what is allowed."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed for {name}: {allowed}") from None
        return value
    return convert


#: targets of ``hamattn synth`` and ``sweep`` (synth/flows.py TARGETS)
TARGET_NAMES = ("ice40-up5k", "ice40-hx8k", "ecp5-25k", "xc7", "gates")
#: parameters only the hardware uses: ``fit`` does not take them
HARDWARE_ONLY = ("lanes", "rows", "keys_per_cycle", "popcount", "adders", "weights")


_ALLOWED = {
    "d": "an integer from 1 to 1024", "w": "an integer from 2 to 16",
    "b": "an integer from 1 to 1024", "N": "an integer from 1 to 65536",
    "k": "an integer from 1 to N", "g": "a number with 0 < g <= 64",
    "smax": "an integer from 0 to 32", "lanes": "an integer from 1 to d",
    "rows": "an integer from 1 to b", "keys_per_cycle": "an integer from 1 to N",
    "seed": "an integer from 0 to 2**63-1",
}


def add_params(parser, skip=()):
    """The flags of SPEC §1 (but those in ``skip``); the help shows the config's defaults.
    A flag not given is None in the namespace (see :func:`given_params`)."""
    grp = parser.add_argument_group("core parameters (SPEC §1)")
    for p in PARAMS:
        if p.name in skip:
            continue
        # a default that depends on another parameter is in the help text itself
        shown = "" if p.default is None else f" [default: {p.default}]"
        kw = {"dest": p.name, "default": None, "help": p.help + shown}
        if p.kind is not str:
            kind, allowed = p.kind, _ALLOWED[p.name]
            kw["type"] = _typed(kind, p.flag, allowed)
            kw["metavar"] = kind.__name__.upper()
        if p.name == "mode":
            kw["metavar"] = "{linear,topk,hsoftmax}"
        grp.add_argument(p.flag, **kw)
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on errors")


def given_params(args):
    """The parameters of SPEC §1 the user gave, by symbol; a weights file by its absolute
    path (resolved here, where the command line is read)."""
    given = {p.name: getattr(args, p.name) for p in PARAMS
             if getattr(args, p.name, None) is not None}
    w = given.get("weights")
    if w is not None and w not in WEIGHT_SOURCES:
        given["weights"] = os.path.abspath(os.path.expanduser(w))
    return given


def param_values(args):
    """Every parameter of SPEC §1: what the user gave, else the default."""
    return {**{p.name: p.default for p in PARAMS}, **given_params(args)}


def config_from_args(args):
    """The config of the flags; a flag the config's mode (or weights file) does not use is
    refused by name."""
    given = given_params(args)
    cfg = CoreConfig.create(**given)
    check_given(cfg, given)
    return cfg


def timing_text(timing):
    """``22`` or ``6 + 2·n``: a manifest timing object (SPEC §5) as text."""
    return str(Timing(**timing))


# ------------------------------------------------------------------- commands

def cmd_gen(args):
    from .verilog import generate
    cfg = config_from_args(args)
    vpath, jpath = generate(cfg, args.output, args.top,
                            progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"wrote {vpath}")
    print(f"wrote {jpath}")
    print(f"latency {timing_text(cfg.latency)} edges, query interval "
          f"{timing_text(cfg.q_interval)}, key interval {timing_text(cfg.kv_interval)}"
          + (" (n: keys in the window)" if cfg.latency["per_key"] else ""))
    return 0


def cmd_sim(args):
    from ..verif.simulate import run_cli
    return run_cli(config_from_args(args), args)


def cmd_vectors(args):
    from ..verif.vectors import run_cli
    return run_cli(config_from_args(args), args)


def cmd_synth(args):
    from ..synth.cli import run_synth
    return run_synth(config_from_args(args), args)


def cmd_board(args):
    from ..synth.board import board, run_board
    board(args.board)               # an unknown board is refused before anything is built
    return run_board(config_from_args(args), args)


def cmd_sweep(args):
    from ..synth.cli import run_sweep
    return run_sweep(args, given_params(args))


def cmd_report(args):
    from ..synth.cli import run_report
    return run_report(args)


def _load_npy(path, flag, d, w):
    """An integer .npy of shape (n, d) or (windows, n, d) with w-bit entries, or UserError."""
    import os

    import numpy as np
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: no such file")
    try:
        a = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise UserError(f"{flag} {path}: not a plain .npy array ({e})") from None
    except (OSError, EOFError) as e:
        raise UserError(f"{flag} {path}: unreadable .npy file ({e})") from None
    if not isinstance(a, np.ndarray):
        raise UserError(f"{flag} {path}: a .npy array is needed, not an .npz archive")
    if a.dtype.kind not in "iu":
        raise UserError(f"{flag} {path}: the vectors must be integers (dtype {a.dtype} given);"
                        f" quantize float activations first: x_int = clip(round(x / s), "
                        f"-2^(w-1), 2^(w-1)-1) with s = max|x| / (2^(w-1)-1) per head")
    if a.ndim not in (2, 3) or a.shape[-1] != d or a.size == 0:
        raise UserError(f"{flag} {path}: shape {a.shape} is not allowed: (n, d) or "
                        f"(windows, n, d) with d = --head-dim = {d} and n >= 1")
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    if int(a.min()) < lo or int(a.max()) > hi:
        raise UserError(f"{flag} {path}: values from {int(a.min())} to {int(a.max())} do not "
                        f"fit --width {w} (allowed {lo}..{hi})")
    return a.astype(np.int64)


def cmd_fit(args):
    import math
    import shlex
    import time

    import numpy as np

    from ..golden import fit as fitlib
    from ..golden import hash_codes, pack_codes
    from ..verif.simulate import config_flags
    if args.output is None:
        raise UserError("the output file is missing: give -o/--output PATH.npz")
    given = given_params(args)
    prm = param_values(args)
    # validate the parameters the way the core will (names, ranges, flags of the mode)
    check_given(CoreConfig.create(**given), given)
    d, w, b, N = prm["d"], prm["w"], prm["b"], prm["N"]
    if not 2 <= args.weight_bits <= 16:
        raise UserError(f"--weight-bits {args.weight_bits} is not allowed: an integer from 2 "
                        "to 16 (2 = ternary)")
    if args.logit_scale is not None and not (math.isfinite(args.logit_scale)
                                             and args.logit_scale > 0):
        raise UserError(f"--logit-scale {args.logit_scale} is not allowed: a positive number")
    if args.iters < 1:
        raise UserError(f"--iters {args.iters} is not allowed: a positive integer")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UserError(f"--noise {args.noise} is not allowed: a finite number >= 0")
    if args.shift_queries < 1:
        raise UserError(f"--shift-queries {args.shift_queries} is not allowed: a positive "
                        "integer")
    q = _load_npy(args.queries, "--queries", d, w)
    k = _load_npy(args.keys, "--keys", d, w)
    v = _load_npy(args.values, "--values", d, w) if args.values else None
    if q.ndim != k.ndim or (q.ndim == 3 and q.shape[0] != k.shape[0]):
        raise UserError(f"--queries {q.shape} and --keys {k.shape} do not match: both (n, d) "
                        "or both (windows, n, d) with the same number of windows")
    if v is not None and v.shape != k.shape:
        raise UserError(f"--values {v.shape} must have the shape of --keys {k.shape}")
    if args.method == "ranking" and args.logit_scale is None:
        raise UserError("--method ranking needs --logit-scale: the attention logit of the "
                        "model is logit_scale * q.k on the integer vectors, i.e. "
                        "s_q * s_k / sqrt(d) for per-head quantization scales s_q, s_k "
                        "(or use --method itq or random)")
    asym = {"auto": None, "yes": True, "no": False}[args.query_hash]
    t0 = time.perf_counter()
    log = print if args.verbose else None
    try:
        arrays = fitlib.fit_hash(q, k, b, args.method, args.weight_bits, prm["seed"],
                                 logit_scale=args.logit_scale, seq_len=N,
                                 asymmetric=asym, shifts=None if not args.no_shifts else False,
                                 smax=prm["smax"], iters=args.iters, values=v, log=log,
                                 noise=args.noise, shift_queries=args.shift_queries)
    except ValueError as e:
        raise UserError(str(e)) from None
    fitlib.save_weights(args.output, arrays)
    # the file must load as the core will load it, in the user's mode
    cfg = CoreConfig.create(**{**given, "weights": args.output})
    print(f"wrote {args.output}: b = {b}, d = {d}, method {args.method}, "
          f"weights of {cfg.weight_width} bits, "
          f"{'separate query hash' if cfg.asymmetric else 'one hash for queries and keys'}"
          f"{', shift table s[0..b] = 0..' + str(cfg.shifts[-1]) if 'shifts' in arrays else ''} "
          f"({time.perf_counter() - t0:.1f} s)")
    if "g" in arrays:
        print(f"best temperature of exp(-g*H/b) on the sample: g = {float(arrays['g']):.2f}")
    if args.logit_scale is not None:
        qs, ks = fitlib.window_data(q, k, N)
        rec = []
        for qq, kk in zip(qs, ks):
            qq, kk = qq.astype(np.int64), kk.astype(np.int64)
            H = (pack_codes(hash_codes(cfg, qq, query=True))[:, None, :] ^
                 pack_codes(hash_codes(cfg, kk))[None, :, :])
            H = np.bitwise_count(H).sum(axis=2)
            m = min(8, kk.shape[0])
            exact = np.argsort(-(qq @ kk.T).astype(np.float64), axis=1, kind="stable")[:, :m]
            approx = np.argsort(H, axis=1, kind="stable")[:, :m]
            rec.extend(len(set(a) & set(e)) / m for a, e in zip(approx, exact))
        print(f"top-8 recall of the Hamming ranking on the sample: {np.mean(rec):.3f}")
    # the flags of the user's config that the hardware uses (those of a mode it does not
    # have, and --temperature/--max-shift beside a fitted shift table, would be refused)
    flags = config_flags(cfg)
    i = flags.index("--weights")
    flags = flags[i:i + 2] + flags[:i] + flags[i + 2:]
    print("use it: " + shlex.join(["hamattn", "gen", *flags, "-o", "build/core"]))
    return 0


def build_parser():
    top = argparse.ArgumentParser(
        prog="hamattn", description="Generate, simulate and synthesize binary-code "
        "(Hamming) attention hardware.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("gen", help="write <top>.v and <top>.json for a config")
    add_params(p)
    p.add_argument("--top", default="hamattn_core", help="Verilog module name")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_gen, parser=p)

    p = sub.add_parser("sim", help="generate and simulate a config against the golden model")
    add_params(p)
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                   help="simulator [default: verilator]")
    p.add_argument("--sim-seed", dest="sim_seed", default=None, metavar="S",
                   type=_typed(int, "--sim-seed", _ALLOWED["seed"], 0, 2**63 - 1),
                   help="seed of the stimulus, 0..2**63-1 [default: --seed]")
    p.add_argument("--windows", default=20, metavar="N",
                   type=_typed(int, "--windows", "a positive integer", 1),
                   help="windows of keys and queries per scenario [default: 20]")
    p.add_argument("--waves", action="store_true",
                   help="write a waveform and print its path: FST, or VCD on Verilator when "
                   "the C++ compiler lacks lz4.h (the FST writer needs it)")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="build folder [default: build/sim/<hash>]")
    p.set_defaults(func=cmd_sim, parser=p)

    p = sub.add_parser(
        "vectors", help="write test vectors and a self-checking Verilog testbench",
        description="Write the Verilog and manifest (as gen), key/value and query beats and "
        "the golden model's expected outputs as $readmemh files, and <top>_tb.v: a plain "
        "Verilog testbench that drives them (valid/ready from seeded LFSRs), checks every "
        "output and the manifest's latency, and ends with PASS or FAIL ($fatal). --seed "
        "also seeds the windows and the LFSRs. See docs/vectors.md.")
    add_params(p)
    p.add_argument("--windows", type=_typed(int, "--windows", "an integer >= 1"),
                   default=DEFAULT_WINDOWS, metavar="N",
                   help=f"windows of keys and queries [default: {DEFAULT_WINDOWS}]")
    p.add_argument("--top", default="hamattn_core", help="Verilog module name")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_vectors)

    p = sub.add_parser("synth", help="synthesize (and place) a config for an FPGA or gates")
    add_params(p)
    p.add_argument("--target", required=True, choices=TARGET_NAMES,
                   help="FPGA (placed: ice40-*, ecp5-25k) or synthesis only (xc7, gates)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report here")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline design")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="tool files go here [default: build/synth]")
    p.set_defaults(func=cmd_synth, parser=p)

    p = sub.add_parser(
        "board", help="build a bitstream for an FPGA board (iCEBreaker, ULX3S)",
        description="Wrap the core in a board top (seeded stimulus generator, outputs "
        "XOR-reduced onto LEDs), build the bitstream with the amaranth-boards platform and "
        "the YoWASP tools, and report utilization and Fmax. Takes minutes; the first use of "
        "a YoWASP tool on a machine compiles it first.")
    add_params(p)
    p.add_argument("--board", required=True, metavar="{icebreaker,ulx3s}",
                   help="icebreaker (iCE40 UP5K) or ulx3s (ECP5 LFE5U-25F)")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="build folder [default: build/board/<board>]")
    p.add_argument("--json", default=None, metavar="PATH", help="write the report here")
    p.add_argument("--timeout", type=_typed(int, "--timeout", "a positive integer"),
                   default=3600, metavar="SECONDS",
                   help="stop the build after this long [default: 3600]")
    p.set_defaults(func=cmd_board, parser=p)

    p = sub.add_parser("sweep", help="synthesize a grid of configs in parallel")
    add_params(p)
    p.add_argument("--grid", action="append", default=[], metavar="PARAM=V1,V2,...",
                   help="a parameter and its values, e.g. --grid b=16,32,64 (repeatable)")
    p.add_argument("--target", action="append", required=True, choices=TARGET_NAMES,
                   help="a target of `hamattn synth` (required; repeatable: every config "
                   "on every target)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the baseline designs (about half the tool time)")
    p.add_argument("--jobs", default=None, metavar="N",
                   type=_typed(int, "--jobs", "a positive integer", 1),
                   help="local worker processes [default: the number of CPUs]")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the jobs on this Dask distributed scheduler instead "
                   "(e.g. tcp://host:8786)")
    p.add_argument("-o", "--output", default="build/sweep", metavar="DIR",
                   help="results.json, results.csv and the tool files (DIR/build) "
                   "[default: build/sweep]")
    p.set_defaults(func=cmd_sweep, parser=p)

    p = sub.add_parser(
        "fit", help="fit a hash projection to sample queries and keys",
        description="Learn the integer hash W, theta (and a query hash Wq, thetaq and the "
        "hsoftmax shift table) from sample query and key vectors, and write the .npz of "
        "SPEC 2 for --weights. Inputs are integer .npy arrays of --width-bit entries, "
        "(n, d) cut into windows of --seq-len rows or (windows, n, d).")
    add_params(p, skip=HARDWARE_ONLY)
    p.add_argument("--queries", required=True, metavar="PATH.npy",
                   help="sample queries, integers (n, d) or (windows, n, d)")
    p.add_argument("--keys", required=True, metavar="PATH.npy",
                   help="sample keys, the same layout as --queries")
    p.add_argument("--values", default=None, metavar="PATH.npy",
                   help="sample values (optional): the ranking fit then also matches the "
                   "attention outputs")
    p.add_argument("--method", choices=("random", "itq", "ranking"), default="ranking",
                   help="random: the baseline; itq: PCA + iterative quantization; ranking: "
                   "fit the codes to the attention itself [default: ranking]")
    p.add_argument("--weight-bits", dest="weight_bits", type=_typed(int, "--weight-bits",
                   "an integer from 2 to 16"), default=2, metavar="INT",
                   help="signed bits of each weight (2 = ternary) [default: 2]")
    p.add_argument("--logit-scale", dest="logit_scale",
                   type=_typed(float, "--logit-scale", "a positive number"), default=None,
                   metavar="FLOAT", help="the model's attention logit is logit_scale*q.k "
                   "on these integers: s_q*s_k/sqrt(d) (needed by ranking and the shift "
                   "table)")
    p.add_argument("--query-hash", dest="query_hash", choices=("auto", "yes", "no"),
                   default="auto", help="a separate hash for queries (auto: for ranking) "
                   "[default: auto]")
    p.add_argument("--no-shifts", dest="no_shifts", action="store_true",
                   help="do not fit the hsoftmax shift table")
    p.add_argument("--iters", type=_typed(int, "--iters", "a positive integer", 1), default=300,
                   metavar="INT",
                   help="optimiser steps of the ranking fit [default: 300]")
    p.add_argument("--noise", type=_typed(float, "--noise", "a finite number >= 0"),
                   default=0.0, metavar="FLOAT",
                   help="input noise of the ranking fit, in units of the data's spread (the "
                   "fidelity bench uses 0.3) [default: 0]")
    p.add_argument("--shift-queries", dest="shift_queries",
                   type=_typed(int, "--shift-queries", "a positive integer"),
                   default=_fit_default("shift_queries"), metavar="INT",
                   help="sample queries the shift table is fitted on [default: %(default)s]")
    p.add_argument("--verbose", action="store_true", help="print the fit's progress")
    p.add_argument("-o", "--output", required=True, metavar="PATH.npz", help="weights file")
    p.set_defaults(func=cmd_fit, parser=p)

    p = sub.add_parser("report", help="Markdown/JSON/CSV report of sweep results")
    p.add_argument("input", nargs="?", default="build/sweep", metavar="DIR",
                   help="the -o folder of `hamattn sweep` [default: build/sweep]")
    p.add_argument("-o", "--output", default="build/report", metavar="DIR",
                   help="report.md, plots, figures.json/csv [default: build/report]")
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    p.set_defaults(func=cmd_report, parser=p)
    return top


def main(argv=None):
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:                   # named by the command's own parser, with its usage
        hardware = [a for a in extra if a in {FLAGS[n] for n in HARDWARE_ONLY}]
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}"
                          + (" (fit takes no hardware flags: give them to gen, sim or synth "
                             "with the fitted --weights)" if hardware and
                             args.command == "fit" else ""))
    try:
        with process.signals_raise():
            return args.func(args) or 0
    except (ConfigError, UserError) as e:
        if args.debug:
            raise
        print(f"hamattn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        # Ctrl-C (SIGINT) or SIGTERM: no child may outlive the command
        with process.signals_ignored():
            process.end_children()
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"hamattn {args.command}: stopped by {signal.Signals(signum).name}",
              file=sys.stderr)
        return 128 + signum
    except Exception as e:                                    # noqa: BLE001
        if args.debug:
            raise
        print(f"hamattn {args.command}: failed: {type(e).__name__}: {e} "
              f"(run with --debug for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
