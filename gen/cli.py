"""The ``hamattn`` command line (SPEC §6): gen, sim, synth, sweep, fit, report.

Every command takes the parameters of SPEC §1 by the same flags. A user mistake prints
``hamattn <command>: error: ...`` on stderr and exits 2 with no traceback (``--debug`` shows
one); any other failure exits 1.
"""

from __future__ import annotations

import argparse
import sys

from ..config import PARAMS, ConfigError, CoreConfig
from ..errors import UserError

__all__ = ["main", "build_parser", "config_from_args", "UserError"]


def _typed(kind, name, allowed):
    def convert(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed for {name}: {allowed}") from None
    return convert


_PARAM_TYPES = {
    "d": (int, "an integer from 1 to 1024"), "w": (int, "an integer from 2 to 16"),
    "b": (int, "an integer from 1 to 1024"), "N": (int, "an integer from 1 to 65536"),
    "k": (int, "an integer from 1 to N"), "g": (float, "a number with 0 < g <= 64"),
    "smax": (int, "an integer from 0 to 32"), "lanes": (int, "an integer from 1 to d"),
    "seed": (int, "an integer from 0 to 2**63-1"),
}


def add_params(parser):
    """The flags of SPEC §1, with the config's defaults."""
    grp = parser.add_argument_group("core parameters (SPEC §1)")
    for p in PARAMS:
        kw = {"dest": p.name, "default": p.default, "help": f"{p.help} [default: {p.default}]"}
        if p.name in _PARAM_TYPES:
            kind, allowed = _PARAM_TYPES[p.name]
            kw["type"] = _typed(kind, p.flag, allowed)
            kw["metavar"] = kind.__name__.upper()
        if p.name == "mode":
            kw["metavar"] = "{linear,topk,hsoftmax}"
        if p.name == "lanes":
            kw["help"] = f"{p.help} [default: d]"
        grp.add_argument(p.flag, **kw)
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on errors")


def config_from_args(args):
    return CoreConfig.create(**{p.name: getattr(args, p.name) for p in PARAMS})


# ------------------------------------------------------------------- commands

def cmd_gen(args):
    from .verilog import generate
    cfg = config_from_args(args)
    vpath, jpath = generate(cfg, args.output, args.top,
                            progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(f"wrote {vpath}")
    print(f"wrote {jpath}")
    lat, qi = cfg.latency, cfg.q_interval
    print(f"latency {lat['fixed']} + {lat['per_key']}·n edges, query interval "
          f"{qi['fixed']} + {qi['per_key']}·n, key interval 1")
    return 0


def cmd_sim(args):
    from ..verif.simulate import run_cli
    return run_cli(config_from_args(args), args)


def cmd_synth(args):
    from ..synth.cli import run_synth
    return run_synth(config_from_args(args), args)


def cmd_sweep(args):
    from ..synth.cli import run_sweep
    return run_sweep(args)


def cmd_report(args):
    from ..synth.cli import run_report
    return run_report(args)


def cmd_fit(args):
    raise UserError("'hamattn fit' is not available in this release: hash fitting is "
                    "planned (use --weights random-ternary, random-sign or your own .npz "
                    "with integer arrays W (b, d) and theta (b,))")


def build_parser():
    top = argparse.ArgumentParser(
        prog="hamattn", description="Generate, simulate and synthesize binary-code "
        "(Hamming) attention hardware.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("gen", help="write <top>.v and <top>.json for a config")
    add_params(p)
    p.add_argument("--top", default="hamattn_core", help="Verilog module name")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_gen)

    p = sub.add_parser("sim", help="generate and simulate a config against the golden model")
    add_params(p)
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                   help="simulator [default: verilator]")
    p.add_argument("--sim-seed", dest="sim_seed", type=int, default=None, metavar="S",
                   help="seed of the stimulus (default: --seed)")
    p.add_argument("--windows", type=int, default=20, help="windows to simulate")
    p.add_argument("--waves", action="store_true", help="write an FST waveform")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="build folder [default: build/sim/<hash>]")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("synth", help="synthesize (and place) a config for an FPGA or gates")
    add_params(p)
    p.add_argument("--target", required=True,
                   choices=("ice40-up5k", "ice40-hx8k", "ecp5-25k", "xc7", "gates"))
    p.add_argument("--json", default=None, metavar="PATH", help="write the report here")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline design")
    p.add_argument("--build-dir", default=None, metavar="DIR")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("sweep", help="synthesize a grid of configs in parallel")
    add_params(p)
    p.add_argument("--grid", action="append", default=[], metavar="PARAM=V1,V2,...",
                   help="a parameter and its values, e.g. --grid b=16,32,64 (repeatable)")
    p.add_argument("--target", action="append", default=None)
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS")
    p.add_argument("-o", "--output", default="build/sweep", metavar="DIR")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("fit", help="fit a hash projection to sample queries and keys")
    add_params(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("report", help="Markdown/JSON/CSV report of sweep results")
    p.add_argument("input", nargs="?", default="build/sweep", metavar="DIR")
    p.add_argument("-o", "--output", default="build/report", metavar="DIR")
    p.add_argument("--debug", action="store_true")
    p.set_defaults(func=cmd_report)
    return top


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except (ConfigError, UserError) as e:
        if args.debug:
            raise
        print(f"hamattn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hamattn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:                                    # noqa: BLE001
        if args.debug:
            raise
        print(f"hamattn {args.command}: failed: {type(e).__name__}: {e} "
              f"(run with --debug for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
