"""``hamattn fit`` (SPEC §6): read the sample vectors and the fit's flags, run
:func:`hamattn.fit.fit_hash`, write the weights file and say how to use it."""

from __future__ import annotations

import math
import os
import shlex
import time

import numpy as np

from ..config import CoreConfig, check_given
from ..errors import UserError
from ..flags import config_flags, given_params, param_values
from ..golden import hash_codes, pack_codes
from . import train as fitlib

__all__ = ["run_cli"]


def _load_npy(path, flag, d, w):
    """An integer .npy of shape (n, d) or (windows, n, d) with w-bit entries, or UserError."""
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


def run_cli(args):
    """``hamattn fit``: fit the hash to the sample vectors of the flags, write the weights
    file, print what was fitted and the ``hamattn gen`` command that uses it."""
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
