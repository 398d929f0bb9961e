"""The liveness evaluation (ISO/IEC 30107-3 APCER per attack type, BPCER) through the product's own
decision code. The work is in the ``liveness_bench`` package (see its docstring for one module per job).

Usage::

    .venv/bin/python benchmarks/liveness_eval.py data        # analyse clips and render attacks (cached, ~15 min)
    .venv/bin/python benchmarks/liveness_eval.py evaluate    # print the tables
    .venv/bin/python benchmarks/liveness_eval.py doc         # ... and write them into docs/liveness.md
    .venv/bin/python benchmarks/liveness_eval.py evaluate --interval-ms 250
        # the clips (bona fide, screen replays, re-sent captures) filmed and sent every 250 (or 320) ms
        # instead of every 150 ms: what a camera slower than the page's filming interval delivers (the
        # page films each camera frame once, static/js/face-capture.js). Prints only.
    .venv/bin/python benchmarks/liveness_eval.py moves [--doc]
        # the evaluation against two-move (default) and three-move challenges in one run, side by side
        # (a measurement of IDP_LIVENESS_MOVES=3); --doc writes the comparison into docs/liveness.md
    .venv/bin/python benchmarks/liveness_eval.py conditions [--doc]
        # the bona fide captures (one- and two-move turn captures, plain bursts) filmed in worse conditions:
        # dim / dark room, sensor noise, a 320x240 camera, strong JPEG, blur (liveness_bench.media.CONDITIONS;
        # analyses the clips and their condition variants if not cached, ~3 min per condition); --doc writes
        # the table into docs/liveness.md ("Worse capture conditions")
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "evaluate"
    if cmd in ("data", "clips"):
        from liveness_bench import data
        data.build_clips(("clip",))
        if cmd == "data":
            from liveness_bench import render
            data.build_attacks()
            # the same prints performing a three-move challenge of turns (``moves``)
            data.build_attacks(3, kinds=render.PRINT_KINDS + render.OTHER_KINDS)
            data.build_clips(("q80", "screen"))
            data.build_heads()  # rendered bona fide heads performing turns and tilts (slow: a warp per frame)
        return 0
    if cmd in ("evaluate", "doc"):
        from liveness_bench import protocol, report
        if "--interval-ms" in argv:
            if cmd == "doc":
                print("--interval-ms is for `evaluate` only (the tables of docs/liveness.md are at 150 ms)",
                      file=sys.stderr)
                return 2
            protocol.INTERVAL_MS = float(argv[argv.index("--interval-ms") + 1])
        return report.main(write_doc=cmd == "doc")
    if cmd == "conditions":
        from liveness_bench import data, media, report
        data.build_clips(("clip", *media.CONDITIONS))
        return report.main_conditions(write_doc="--doc" in argv)
    if cmd == "moves":
        from liveness_bench import report
        return report.main_moves(write_doc="--doc" in argv)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
