"""The next-move gate judged frame by frame, on the shared clips' own turns: does each face frame of a real
turn match its owner on its own? (docs/liveness.md, "At sign-in the moves are shown one at a time".)

For each clip with a move of at least 10 degrees (``liveness_bench.sets.Clips(SMALL_MOVE_DEG)``): a
template enrolled by the product's engine from 10 frames of the same clip that face the camera, at least
0.8 s from any of its moves (the same session: an optimistic owner); for each move, the frames the page
would film every 150 ms over the move as the gate judges it (``idp.faceweb.liveness.move_spans``): from the
frame before the last one facing the camera (within 6 degrees) before the move, or the second before the
frame where it reaches 10 degrees if that is longer, to the frame after the first one back facing the camera
(the whole move, its peak and its return included); each embedded (any face frame, as at sign-in) and judged
alone by ``engine.verify(..., facenet_only=True)`` - the gate's decision - and, for comparison, the lowest
over the second up to the frame at 10 degrees alone (the span the gate judged before) and those frames
together (the mean embedding the gate judged before that).

    .venv/bin/python benchmarks/face_gate_frames.py     # needs liveness_eval.py data; a few minutes
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SPAN_MS, STEP_MS, REACH_DEG, RETURN_DEG = 1000, 150, 10.0, 6.0


def main() -> int:
    from liveness_bench import media, sets

    from idp.config import Config
    from idp.face import FrameAnalysis

    eng = media.engine()
    threshold = Config().face_threshold
    print("| clip | move | peak (deg) | frames | each frame's score | lowest | lowest, last second only | "
          "mean embedding's score | threshold |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for clip, c in sets.Clips(sets.SMALL_MOVE_DEG).items.items():
        if not c["turns"]:
            continue
        frames = {round(t): rgb for t, rgb in media.decode_video(media.VIDEO_DIR / f"{clip}.mp4")}
        t, peaks = c["t"], [e[1] for e in c["turns"]]
        facing = [tk for tk, yk in zip(t, c["y"]) if abs(np.nan_to_num(yk, nan=99)) < sets.FRONTAL_DEG
                  and all(abs(tk - q) > 800 for q in peaks)]
        if len(facing) < 5:
            continue
        enrolled = eng.enroll([frames[round(facing[int(i)])] for i in np.linspace(0, len(facing) - 1, 10)])
        if enrolled.template is None:
            continue
        for name, peak, deg in c["turns"]:
            sign = 1.0 if name in ("turn_left", "look_up") else -1.0
            series = c["y"] if name.startswith("turn") else c["p"]
            reach = [k for k in range(len(t)) if peak - 1500 <= t[k] <= peak
                     and sign * np.nan_to_num(series[k], nan=-99) >= REACH_DEG]
            if not reach:
                continue
            left = reach[0]  # back to the last frame facing the camera before the move
            while left > 0 and sign * np.nan_to_num(series[left], nan=99) >= RETURN_DEG:
                left -= 1
            back = reach[0]  # on to the first frame facing the camera again after it
            while back < len(t) - 1 and sign * np.nan_to_num(series[back], nan=99) >= RETURN_DEG:
                back += 1
            reached = t[reach[0]]
            first = min(t[max(left - 1, 0)], reached - SPAN_MS)
            last = max(t[min(back + 1, len(t) - 1)], reached)
            span, ticks = [], []  # the page's frames, every STEP_MS through the frame at 10 degrees
            for tick in reached + STEP_MS * np.arange(-np.floor((reached - first) / STEP_MS),
                                                      np.ceil((last - reached) / STEP_MS) + 1):
                a = eng.analyze(frames[round(t[int(np.argmin(np.abs(t - tick)))])], embed="always")
                if a.box is not None and a.embedding is not None:  # at sign-in every face frame is judged
                    span.append(FrameAnalysis(ok=True, reasons=[], box=a.box, landmarks=a.landmarks,
                                              confidence=a.confidence, quality=a.quality, embeddings=a.embeddings))
                    span[-1].embedding = a.embedding
                    ticks.append(tick)
            each = [eng.verify(enrolled.template, [f], threshold=threshold, facenet_only=True) for f in span]
            last_second = [r.score for r, tk in zip(each, ticks) if reached - SPAN_MS <= tk <= reached]
            mean = eng.verify(enrolled.template, [f for f, tk in zip(span, ticks)
                                                  if reached - SPAN_MS <= tk <= reached],
                              threshold=threshold, facenet_only=True)
            rows.append((min(r.score for r in each), min(last_second), mean.score, mean.threshold))
            print(f"| {clip} | {name} | {deg:.1f} | {len(span)} | {', '.join(f'{r.score:.1f}' for r in each)} | "
                  f"{rows[-1][0]:.1f} | {rows[-1][1]:.1f} | {mean.score:.1f} | {mean.threshold:.2f} |", flush=True)
    print(f"\n{len(rows)} moves: the gate opens frame by frame over the move for "
          f"{sum(lo >= th for lo, _, _, th in rows)}, over the last second alone for "
          f"{sum(ls >= th for _, ls, _, th in rows)}, on the mean embedding for {sum(m >= th for _, _, m, th in rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
