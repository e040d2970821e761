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
import sys

from . import fit, process
from .config import FLAGS, ConfigError
from .errors import UserError
from .fit import cli as fit_cli
from .flags import (HARDWARE_ONLY, add_build_dir, add_params, config_from_args, given_params,
                    typed)
from .gen import DEFAULT_TOP, generate
from .rtl.plan import Timing
from .synth import board, report, sweep
from .synth.cli import run_synth
from .synth.flows import TARGETS
from .verif import simulate, vectors

__all__ = ["main", "build_parser"]


#: targets of ``hamattn synth`` and ``sweep`` (synth/flows.py TARGETS)
TARGET_NAMES = tuple(TARGETS)


def timing_text(timing):
    """``22`` or ``6 + 2·n``: a manifest timing object (SPEC §5) as text."""
    return str(Timing(**timing))


# ------------------------------------------------------------------- commands

def cmd_gen(args):
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
    return simulate.run_cli(config_from_args(args), args)


def cmd_vectors(args):
    return vectors.run_cli(config_from_args(args), args)


def cmd_synth(args):
    return run_synth(config_from_args(args), args)


def cmd_board(args):
    board.board(args.board)         # an unknown board is refused before anything is built
    return board.run_board(config_from_args(args), args)


def cmd_sweep(args):
    return sweep.run_cli(args, given_params(args))


def cmd_report(args):
    return report.run_cli(args)


def cmd_fit(args):
    return fit_cli.run_cli(args)


def command(sub, name, func, params=True, skip=(), **kw):
    """A subcommand ``name`` run by ``func``, with the flags of SPEC §1 (but ``skip``) unless
    ``params`` is False, and ``--debug``; ``kw`` goes to ``add_parser`` (help,
    description)."""
    p = sub.add_parser(name, **kw)
    if params:
        add_params(p, skip=skip)
    else:
        p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    p.set_defaults(func=func, parser=p)
    return p


def add_output(p):
    """``--top`` and ``-o DIR`` of the commands that write the Verilog."""
    p.add_argument("--top", default=DEFAULT_TOP, help="Verilog module name")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")


def build_parser():
    top = argparse.ArgumentParser(
        prog="hamattn", description="Generate, simulate and synthesize binary-code "
        "(Hamming) attention hardware.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = command(sub, "gen", cmd_gen, help="write <top>.v and <top>.json for a config")
    add_output(p)

    p = command(sub, "sim", cmd_sim,
                help="generate and simulate a config against the golden model")
    simulate.add_sim_args(p)

    p = command(
        sub, "vectors", cmd_vectors,
        help="write test vectors and a self-checking Verilog testbench",
        description="Write the Verilog and manifest (as gen), key/value and query beats and "
        "the golden model's expected outputs as $readmemh files, and <top>_tb.v: a plain "
        "Verilog testbench that drives them (valid/ready from seeded LFSRs), checks every "
        "output and the manifest's latency, and ends with PASS or FAIL ($fatal). --seed "
        "also seeds the windows and the LFSRs. See docs/vectors.md.")
    p.add_argument("--windows", type=typed(int, "--windows", "an integer >= 1"),
                   default=vectors.DEFAULT_WINDOWS, metavar="N",
                   help=f"windows of keys and queries [default: {vectors.DEFAULT_WINDOWS}]")
    add_output(p)

    p = command(sub, "synth", cmd_synth,
                help="synthesize (and place) a config for an FPGA or gates")
    p.add_argument("--target", required=True, choices=TARGET_NAMES,
                   help="FPGA (placed: ice40-*, ecp5-25k) or synthesis only (xc7, gates)")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline design")
    add_build_dir(p, "build/synth", json=True)
    p.add_argument("--pnr-seed", dest="pnr_seed", default=1, metavar="INT",
                   type=typed(int, "--pnr-seed", "an integer >= 0", 0),
                   help="nextpnr's --seed for the placed targets (not the hash's --seed) "
                   "[default: 1]")

    p = command(
        sub, "board", cmd_board,
        help="build a bitstream for an FPGA board (iCEBreaker, ULX3S)",
        description="Wrap the core in a board top (seeded stimulus generator, outputs "
        "XOR-reduced onto LEDs), build the bitstream with the amaranth-boards platform and "
        "the YoWASP tools, and report utilization and Fmax. Takes minutes; the first use of "
        "a YoWASP tool on a machine compiles it first.")
    p.add_argument("--board", required=True, metavar="{icebreaker,ulx3s}",
                   help="icebreaker (iCE40 UP5K) or ulx3s (ECP5 LFE5U-25F)")
    add_build_dir(p, "build/board/<board>", json=True)
    p.add_argument("--timeout", type=typed(int, "--timeout", "a positive integer"),
                   default=3600, metavar="SECONDS",
                   help="stop the build after this long [default: 3600]")
    p.add_argument("--pnr-seed", dest="pnr_seed", default=None, metavar="INT",
                   type=typed(int, "--pnr-seed", "an integer >= 0", 0),
                   help="nextpnr's --seed (not the hash's --seed) [default: nextpnr's own]")

    p = command(sub, "sweep", cmd_sweep, help="synthesize a grid of configs in parallel")
    p.add_argument("--grid", action="append", default=[], metavar="PARAM=V1,V2,...",
                   help="a parameter and its values, e.g. --grid b=16,32,64 (repeatable)")
    p.add_argument("--target", action="append", required=True, choices=TARGET_NAMES,
                   help="a target of `hamattn synth` (required; repeatable: every config "
                   "on every target)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the baseline designs (about half the tool time)")
    p.add_argument("--jobs", default=None, metavar="N",
                   type=typed(int, "--jobs", "a positive integer", 1),
                   help="local worker processes [default: the number of CPUs]")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the jobs on this Dask distributed scheduler instead "
                   "(e.g. tcp://host:8786)")
    p.add_argument("-o", "--output", default="build/sweep", metavar="DIR",
                   help="results.json, results.csv and the tool files (DIR/build) "
                   "[default: build/sweep]")

    p = command(
        sub, "fit", cmd_fit, skip=HARDWARE_ONLY,
        help="fit a hash projection to sample queries and keys",
        description="Learn the integer hash W, theta (and a query hash Wq, thetaq and the "
        "hsoftmax shift table) from sample query and key vectors, and write the .npz of "
        "SPEC 2 for --weights. Inputs are integer .npy arrays of --width-bit entries, "
        "(n, d) cut into windows of --seq-len rows or (windows, n, d).")
    p.add_argument("--queries", required=True, metavar="PATH.npy",
                   help="sample queries, integers (n, d) or (windows, n, d)")
    p.add_argument("--keys", required=True, metavar="PATH.npy",
                   help="sample keys, the same layout as --queries")
    p.add_argument("--values", default=None, metavar="PATH.npy",
                   help="sample values (optional): the ranking fit then also matches the "
                   "attention outputs")
    p.add_argument("--method", choices=fit.METHODS, default="ranking",
                   help="random: the baseline; itq: PCA + iterative quantization; ranking: "
                   "fit the codes to the attention itself [default: ranking]")
    p.add_argument("--weight-bits", dest="weight_bits", type=typed(int, "--weight-bits",
                   "an integer from 2 to 16"), default=2, metavar="INT",
                   help="signed bits of each weight (2 = ternary) [default: 2]")
    p.add_argument("--logit-scale", dest="logit_scale",
                   type=typed(float, "--logit-scale", "a positive number"), default=None,
                   metavar="FLOAT", help="the model's attention logit is logit_scale*q.k "
                   "on these integers: s_q*s_k/sqrt(d) (needed by ranking and the shift "
                   "table)")
    p.add_argument("--query-hash", dest="query_hash", choices=("auto", "yes", "no"),
                   default="auto", help="a separate hash for queries (auto: for ranking) "
                   "[default: auto]")
    p.add_argument("--no-shifts", dest="no_shifts", action="store_true",
                   help="do not fit the hsoftmax shift table")
    p.add_argument("--iters", type=typed(int, "--iters", "a positive integer", 1), default=300,
                   metavar="INT",
                   help="optimiser steps of the ranking fit [default: 300]")
    p.add_argument("--noise", type=typed(float, "--noise", "a finite number >= 0"),
                   default=0.0, metavar="FLOAT",
                   help="input noise of the ranking fit, in units of the data's spread (the "
                   "fidelity bench uses 0.3) [default: 0]")
    p.add_argument("--shift-queries", dest="shift_queries",
                   type=typed(int, "--shift-queries", "a positive integer"),
                   default=fit.fit_default("shift_queries"), metavar="INT",
                   help="sample queries the shift table is fitted on [default: %(default)s]")
    p.add_argument("--verbose", action="store_true", help="print the fit's progress")
    p.add_argument("-o", "--output", required=True, metavar="PATH.npz", help="weights file")

    p = command(sub, "report", cmd_report, params=False,
                help="Markdown/JSON/CSV report of sweep results")
    p.add_argument("input", nargs="?", default="build/sweep", metavar="DIR",
                   help="the -o folder of `hamattn sweep` [default: build/sweep]")
    p.add_argument("-o", "--output", default="build/report", metavar="DIR",
                   help="report.md, plots, figures.json/csv [default: build/report]")
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
        # Ctrl-C (SIGINT) or SIGTERM: no child may outlive the command
        return process.stoppable(f"hamattn {args.command}", lambda: args.func(args))
    except (ConfigError, UserError) as e:
        if args.debug:
            raise
        print(f"hamattn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:                                    # noqa: BLE001
        if args.debug:
            raise
        print(f"hamattn {args.command}: failed: {type(e).__name__}: {e} "
              f"(run with --debug for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
