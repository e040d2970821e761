"""Issue 8's goal configs on real boards, and the folding that serves each best.

For every goal (a board and a config), candidate foldings (``--lanes`` P and, for
``linear``, ``--rows`` T) are built with :func:`hamattn.synth.board.build_board`: the board
top around the core, synthesis, placement, routing and the bitstream. The best candidate is
the one that fits the device with the most tokens per second at its own Fmax, a token being
one key and one query of a window of N keys, as in self-attention
(``Fmax / (kv_interval + q_interval(N))``). Candidates are listed from the least folded (fastest
per cycle) to the most.

Writes one JSON per built candidate to ``bench/results/goals/`` and the summary, with the
best of every goal, to ``bench/results/goals.json`` and ``goals.md``::

    python -m hamattn.bench.goals                      # every goal (ECP5 builds: ~20 min each)
    python -m hamattn.bench.goals --only icebreaker    # goals whose name contains this
    python -m hamattn.bench.goals --reuse              # keep candidate JSONs already there
    python -m hamattn.bench.goals --summary-only       # only rewrite the summary

``make bench-goals`` runs the first form.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ..config import CoreConfig
from ..errors import UserError
from ..synth.board import build_board
from ..synth.nextpnr import utilisation_table

RESULTS = Path(__file__).resolve().parent / "results"
CAND_DIR = RESULTS / "goals"

ICE = dict(d=32, w=8, b=32, N=256)
ECP = dict(d=64, w=8, b=64, N=1024)

#: name -> (board, config, candidate foldings from the fastest)
GOALS = {
    "icebreaker-topk": ("icebreaker", dict(ICE, mode="topk"), [dict(lanes=2), dict(lanes=1)]),
    "icebreaker-linear": ("icebreaker", dict(ICE, mode="linear"),
                          [dict(lanes=1, rows=16), dict(lanes=1, rows=8),
                           dict(lanes=1, rows=4)]),
    "icebreaker-hsoftmax": ("icebreaker", dict(ICE, mode="hsoftmax"),
                            [dict(lanes=2), dict(lanes=1)]),
    "ulx3s-linear": ("ulx3s", dict(ECP, mode="linear"),
                     [dict(lanes=2), dict(lanes=2, rows=32), dict(lanes=1)]),
    "ulx3s-topk": ("ulx3s", dict(ECP, mode="topk"), [dict(lanes=8), dict(lanes=4)]),
}


def _commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parent.parent,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def candidate_name(goal, fold):
    return f"{goal}-P{fold['lanes']}" + (f"-T{fold['rows']}" if "rows" in fold else "")


def row_of(goal, board_name, cfg, rep):
    """One summary row: the folding, area, Fmax and throughput of a built candidate."""
    util = rep.get("utilization") or {}
    lc, bram = util.get("logic_cells") or {}, util.get("bram") or {}
    fits = rep.get("error") is None and lc.get("used") is not None \
        and lc["used"] <= lc["available"]
    fmax = rep.get("fmax_mhz")
    qi = cfg.at(cfg.q_interval, cfg.N)
    kv = cfg.at(cfg.kv_interval, 0)
    return {
        "goal": goal, "board": board_name, "mode": cfg.mode, "d": cfg.d, "b": cfg.b,
        "N": cfg.N, "lanes": cfg.lanes, "rows": cfg.rows, "groups": cfg.groups,
        "row_blocks": cfg.row_blocks, "fits": bool(fits),
        "logic_cells": lc.get("used"), "logic_cells_available": lc.get("available"),
        "bram": bram.get("used"), "bram_available": bram.get("available"),
        "fmax_mhz": fmax, "kv_interval": kv, "q_interval_full_window": qi,
        "latency_full_window": cfg.at(cfg.latency, cfg.N),
        "queries_per_s": round(fmax * 1e6 / qi, 1) if fits and fmax else None,
        "keys_per_s": round(fmax * 1e6 / kv, 1) if fits and fmax else None,
        "tokens_per_s": round(fmax * 1e6 / (kv + qi), 1) if fits and fmax else None,
        "bitstream_bytes": (rep.get("bitstream") or {}).get("bytes"),
        "commit": rep.get("commit"), "error": rep.get("error"),
    }


_PACKED_KINDS = {"ICESTORM_LC": "logic_cells", "TRELLIS_COMB": "logic_cells",
                 "ICESTORM_RAM": "bram", "DP16KD": "bram"}


def _packed_utilization(tim_path):
    """Logic cells and block RAM from nextpnr's utilisation table after packing (a build
    stopped because the design does not fit has no report JSON)."""
    return {_PACKED_KINDS[k]: {"used": u, "available": a}
            for k, (u, a) in utilisation_table(tim_path).items() if k in _PACKED_KINDS}


def build_candidate(goal, board_name, cfg, path, say):
    t0 = time.monotonic()
    commit = _commit()                         # the code the build starts from
    build_dir = Path("build") / "goals" / path.stem
    try:
        rep = build_board(cfg, board_name, build_dir=build_dir, progress=say, timeout=7200)
    except UserError as e:       # e.g. does not fit: the build's own message, and the
        rep = {"board": board_name, "config": cfg.params(), "error": str(e),   # packing
               "utilization": _packed_utilization(build_dir / "hamattn_board.tim")}
        say(f"{path.stem}: {e}")
    rep["commit"] = commit
    rep["seconds"] = round(time.monotonic() - t0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rep, indent=2) + "\n")
    return rep


def summarize(names):
    rows, best = [], {}
    for goal in names:
        board_name, base, folds = GOALS[goal]
        for fold in folds:
            path = CAND_DIR / f"{candidate_name(goal, fold)}.json"
            if not path.exists():
                continue
            cfg = CoreConfig.create(**base, **fold)
            rows.append(row_of(goal, board_name, cfg, json.loads(path.read_text())))
        fitting = [r for r in rows if r["goal"] == goal and r["fits"]]
        if fitting:
            b = max(fitting, key=lambda r: r["tokens_per_s"] or 0)
            best[goal] = {"lanes": b["lanes"], "rows": b["rows"],
                          "tokens_per_s": b["tokens_per_s"], "fmax_mhz": b["fmax_mhz"],
                          "logic_cells": b["logic_cells"]}
        else:
            best[goal] = None
    return rows, best


def markdown(rows, best):
    out = ["| goal | P | T | fits | logic cells | BRAM | Fmax MHz | kv cycles | "
           "q cycles (N keys) | tokens/s | best |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        bst = best.get(r["goal"]) or {}
        is_best = bst.get("lanes") == r["lanes"] and bst.get("rows") == r["rows"]
        out.append(f"| {r['goal']} | {r['lanes']} | {r['rows']} | "
                   f"{'yes' if r['fits'] else 'no'} | {r['logic_cells']}/"
                   f"{r['logic_cells_available']} | {r['bram']}/{r['bram_available']} | "
                   f"{r['fmax_mhz'] if r['fits'] else '-'} | {r['kv_interval']} | "
                   f"{r['q_interval_full_window']} | {r['tokens_per_s'] or '-'} | "
                   f"{'**best**' if is_best else ''} |")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hamattn.bench.goals", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="goals whose name contains this text")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a candidate whose JSON is already in bench/results/goals")
    ap.add_argument("--summary-only", action="store_true", help="build nothing")
    args = ap.parse_args(argv)
    names = [g for g in GOALS if args.only in g]
    if not names:
        print(f"--only {args.only!r} matches no goal: one of {', '.join(GOALS)}",
              file=sys.stderr)
        return 2

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    if not args.summary_only:
        todo = [(g, f) for g in names for f in GOALS[g][2]]
        for i, (goal, fold) in enumerate(todo, 1):
            board_name, base, _ = GOALS[goal]
            path = CAND_DIR / f"{candidate_name(goal, fold)}.json"
            if args.reuse and path.exists():
                say(f"[{i}/{len(todo)}] {path.stem}: kept")
                continue
            say(f"[{i}/{len(todo)}] {path.stem}: building")
            build_candidate(goal, board_name, CoreConfig.create(**base, **fold), path, say)
    rows, best = summarize(list(GOALS))
    doc = {"description": "issue 8 goal configs on the iCEBreaker (iCE40 UP5K) and the ULX3S "
                          "(ECP5 LFE5U-25F): every candidate folding built with hamattn board; "
                          "best = fits, most tokens/s at its Fmax (a token: one key and one "
                          "query of a window of N keys, kv_interval + q_interval(N) cycles)",
           "rows": rows, "best": best,
           "machine": {"python": platform.python_version(), "platform": platform.platform(),
                       "cpu_count": os.cpu_count()}}
    (RESULTS / "goals.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "goals.md").write_text(markdown(rows, best))
    print(markdown(rows, best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
