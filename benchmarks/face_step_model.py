"""A cooperative person's face step, click -> done: the shared clips' real moves re-timed as a person who
reacts to each instruction would perform them, judged by the product's own liveness decision
(docs/benchmarks.md, "A person who reacts at once: a model").

The browser benchmark (``face_step_browser.py``) plays the clips as they were filmed: they do not react
to the instruction, so its click -> done is the clips' pace. Here every ordered pair of moves of a clip
(the evaluation's ground truth, ``liveness_bench.sets.Clips``) becomes an attempt at that two-move
challenge, filmed as the page films (``liveness_bench.protocol.film``) and judged frame by frame as the
capture API judges (``protocol.run_capture``):

1. the person faces the camera until the cue (drawn as the product draws it) plus a reaction time, then
   performs the first move at the clip's own speed (from the last frontal frame before it);
2. the second instruction appears ``ANSWER_MS`` after the frame at which the decision counts the first
   move (at sign-in it is shown once that move was performed by the enrolled face); the person comes back
   to the camera at the clip's own pace and starts the second move a reaction time after the
   instruction, or once back if that is later (a splice between two frontal frames, as the evaluation's
   two-move captures);
3. click -> done = ``FIRST_FRAME_MS`` + the burst time of the frame at which the decision says done +
   ``DONE_MS``.

The three constants are medians of the browser benchmark on a quiet machine
(``benchmarks/results/face-step-browser-memo.jsonl``, label "after"); the reaction times are assumptions
(a person reading an arrow and choosing a direction), so each is a row. What is modelled: when the
person starts each move. What is real: the moves' frames and speed, and the product's decision.

    .venv/bin/python benchmarks/face_step_model.py [--seed N]      # needs liveness_eval.py data; ~1 min
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FIRST_FRAME_MS = 150  # click -> the first frame filmed (camera open, first grab)
ANSWER_MS = 100  # a frame filmed -> its answer shown (server 92 ms median, upload and page)
DONE_MS = 200  # the frame that completes the moves filmed -> done (its answer, /finish, navigation)
REACTIONS_MS = (300, 450, 600)


def _still(t, frontal, length: float, ending: float) -> float | None:
    """Where a person's ``length`` ms of facing the camera come from in a clip: the frames just before
    ``ending`` when they all face it, else the first such stretch of the clip (then spliced in between two
    frontal frames, as the evaluation's two-move captures); None if the clip has none."""
    def facing(a):
        sel = (t >= a) & (t <= a + length)
        return a >= t[0] and bool(sel.any()) and bool(frontal[sel].all())
    if facing(ending - length):
        return ending - length
    return next((float(a) for a in t[frontal] if facing(a) and a + length <= t[-1]), None)


def attempts(clips, reaction_ms: float, rng) -> list[dict]:
    """Every ordered pair of distinct moves of each clip, re-timed with ``reaction_ms``: one record each
    (``outcome``: accepted, the decision's first reason, or why it could not be filmed)."""
    from liveness_bench import protocol, sets

    from idp.faceweb import liveness as web

    s = protocol.product_settings()
    needed = protocol.needed_frames()
    out = []
    for clip, c in clips.items.items():
        t = c["t"]
        for seq in itertools.permutations(c["turns"], 2):
            rec = {"clip": clip, "challenge": "+".join(e[0] for e in seq), "reaction_ms": reaction_ms}
            out.append(rec)
            y = c["y"] if all(e[0] in sets._TURNS for e in seq) else np.fmax(np.abs(c["y"]), np.abs(c["p"]))
            frontal = np.abs(np.nan_to_num(y, nan=99)) < sets.FRONTAL_DEG
            onsets = []
            for e in seq:
                before = np.flatnonzero((t < e[1]) & frontal)
                onsets.append(float(t[before[-1]]) if len(before) else None)
            back = np.flatnonzero((t > seq[0][1]) & frontal)
            cue = float(rng.uniform(*protocol.CUE_MS))
            if onsets[0] is None or onsets[1] is None or not len(back):
                rec["outcome"] = "a move without a frontal frame before or after it"
                continue
            back = float(t[back[0]])
            # facing the camera from the click until the cue plus a reaction, then the first move
            still = _still(t, frontal, cue + reaction_ms, onsets[0])
            if still is None:
                rec["outcome"] = "no frontal stretch"
                continue
            cuts = [] if still == onsets[0] - cue - reaction_ms else [(still + cue + reaction_ms, onsets[0])]
            win = web.window_ms(rec["challenge"])
            # pass 1: when does the decision count the first move?
            trace: list = []
            frames = protocol.film(c["recs"], c["thumbs"], still, win, rng, cut=list(cuts))
            if frames is None:
                rec["outcome"] = "clip too short"
                continue
            protocol.run_capture(frames, rec["challenge"], cue_ms=cue, needed=needed, settings=s, trace=trace)
            first = next((tm for tm, d in trace if d.result.scores.get("moves_done", 0) >= 1), None)
            if first is None:
                rec["outcome"] = "first move: " + (trace[-1][1].reasons or ["not counted"])[0]
                continue
            # pass 2: back to the camera at the clip's pace, the second move a reaction after its instruction
            wait = max(0.0, first + ANSWER_MS + reaction_ms - (cue + reaction_ms + back - onsets[0]))
            if wait > 0:
                still2 = _still(t, frontal, wait, onsets[1])
                if still2 is None:
                    rec["outcome"] = "no frontal stretch"
                    continue
                cuts.append((back + 1, still2))
                if still2 != onsets[1] - wait:
                    cuts.append((still2 + wait, onsets[1]))
            else:
                cuts.append((back + 1, onsets[1]))
            trace = []
            frames = protocol.film(c["recs"], c["thumbs"], still, win, rng, cut=cuts)
            if frames is None:
                rec["outcome"] = "clip too short"
                continue
            cap = protocol.run_capture(frames, rec["challenge"], cue_ms=cue, needed=needed, settings=s, trace=trace)
            rec.update(outcome=cap.reason if not cap.accepted else "accepted", first_move_ms=first,
                       done_ms=trace[-1][0], total_ms=FIRST_FRAME_MS + trace[-1][0] + DONE_MS)
    return out


def main(argv: list[str]) -> int:
    from liveness_bench import protocol, sets

    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 1
    protocol.memoise_rigidity()
    clips = sets.Clips()
    print("| reaction time (assumed) | attempts filmed | accepted | click -> done, accepted: median "
          "(p25-p75; range) | click -> first move counted: median | not accepted (reason: count) |")
    print("|---|---|---|---|---|---|")
    for reaction in REACTIONS_MS:
        every = attempts(clips, reaction, np.random.default_rng(seed))
        recs = [r for r in every if "total_ms" in r]
        unfilmed = sorted({r["outcome"] for r in every if "total_ms" not in r})
        print(f"<!-- {reaction} ms: {len(every)} pairs of moves; not filmed: "
              + ", ".join(f"{o}: {sum(r['outcome'] == o for r in every)}" for o in unfilmed) + " -->")
        ok = [r for r in recs if r["outcome"] == "accepted"]
        tot = np.array([r["total_ms"] for r in ok]) / 1000
        first = np.array([FIRST_FRAME_MS + r["first_move_ms"] for r in ok]) / 1000
        refused = sorted({r["outcome"] for r in recs} - {"accepted"})
        why = ", ".join(f"{o}: {sum(r['outcome'] == o for r in recs)}" for o in refused) or "-"
        if len(tot):
            p25, p75 = np.percentile(tot, [25, 75])
            spread = f"{np.median(tot):.2f} s ({p25:.2f}-{p75:.2f}; {tot.min():.2f}-{tot.max():.2f})"
            first_s = f"{np.median(first):.2f} s"
        else:
            spread = first_s = "-"
        print(f"| {reaction} ms | {len(recs)} | {len(ok)} | {spread} | {first_s} | {why} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
