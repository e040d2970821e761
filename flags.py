"""The parameters of SPEC §1 on a command line: their flags, read and written.

Every command of ``hamattn`` (cli.py) and the stand-alone entry points that take a core's
parameters (``python -m hamattn.verif.simulate``) add the flags with :func:`add_params`;
the flags, defaults, ranges and help come from :data:`hamattn.config.PARAMS`.
:func:`config_flags` writes a config back as flags (a replay command, a printed ``hamattn
gen`` line). Imports only the config.
"""

from __future__ import annotations

import argparse
import os

from .config import DEFAULT_K, PARAMS, WEIGHT_SOURCES, CoreConfig, check_given, unused_reason

__all__ = ["typed", "add_params", "add_build_dir", "given_params", "param_values",
           "config_from_args", "config_flags", "HARDWARE_ONLY"]

#: parameters only the hardware uses: ``fit`` does not take them
HARDWARE_ONLY = ("lanes", "rows", "keys_per_cycle", "popcount", "adders", "weights")


def typed(kind, name, allowed, lo=None, hi=None):
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


def add_params(parser, skip=()):
    """The flags of SPEC §1 (but those in ``skip``); the help shows the config's defaults.
    A flag not given is None in the namespace (see :func:`given_params`)."""
    grp = parser.add_argument_group("core parameters (SPEC §1)")
    for p in PARAMS:
        if p.name in skip:
            continue
        # a default that depends on another parameter is in the help text itself
        shown = "" if p.default is None else f" [default: {p.default}]"
        kw = {"dest": p.name, "default": None, "help": p.help_text + shown}
        if p.kind is not str:
            kw["type"] = typed(p.kind, p.flag, p.allowed())
            kw["metavar"] = p.kind.__name__.upper()
        if p.name == "mode":
            kw["metavar"] = "{" + ",".join(p.choices) + "}"
        grp.add_argument(p.flag, **kw)
    parser.add_argument("--debug", action="store_true",
                        help="show a traceback on errors")


def add_build_dir(p, default, json=False):
    """``--build-dir`` (and ``--json`` for a report) of the commands that run tools."""
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help=f"build folder [default: {default}]")
    if json:
        p.add_argument("--json", default=None, metavar="PATH", help="write the report here")


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


def config_flags(cfg):
    """The command-line flags (SPEC §1) that rebuild ``cfg``: those of its parameters that
    differ from the defaults and that the hardware uses (a flag of another mode would be
    refused, :func:`hamattn.config.check_given`)."""
    flags = []
    for p in PARAMS:
        v = getattr(cfg, p.name)
        if unused_reason(cfg, p.name) is not None:
            continue
        if p.name in ("lanes", "rows", "k"):
            if v == {"lanes": cfg.d, "rows": cfg.b, "k": min(DEFAULT_K, cfg.N)}[p.name]:
                continue
        elif v == p.default or (p.name == "g" and float(v) == float(p.default)):
            continue
        flags += [p.flag, str(v)]
    return flags
