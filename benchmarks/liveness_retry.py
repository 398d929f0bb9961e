"""A fixed recording against the sign-in's attempt rules: how often it passes before the lock.

An attacker who has the password replays one recording of the user (``screen__<clip>``, a screen held by
hand, from the cached evaluation data of ``benchmarks/liveness_eval.py data``) from the same point of the
clip on every try, whatever the page asks; the filming starts at a random phase of the page's 150 ms tick
and each try has its own cue moment. Up to 10 counted tries (the lock). Each try is judged with the
product's decision code. Three rule sets:

* ``before``: a new challenge drawn for every capture; only accepted captures' face hashes are kept;
* ``failed kept``: as before, and failed captures' face hashes (their passing poses) are kept too;
* ``now`` (the product): the challenge is kept until the user matches (``idp.faceweb.attempts``), and
  every frame's face hash is kept as it arrives if the frame is turned (``idp.faceweb.liveness.turned_pose``),
  with the motion from the turned frame before it.

Only recordings that hold a whole challenge (``moves`` clear turns in the filming window) are tried.
What keeping failed captures costs people who retry (a fresh capture of the same person, scene and light
seconds after a stored one) is measured by ``benchmarks/liveness_replay_store.py`` ("genuine captures
refused"): the short clips hold too few separate turns for that here.

    .venv/bin/python benchmarks/liveness_retry.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TRIES = 10
KEPT = 150


def main() -> int:
    from liveness_bench import protocol, sets
    from idp.faceweb import liveness as web
    from idp.liveness.fingerprint import passing_poses

    protocol.memoise_rigidity()
    settings = protocol.product_settings()
    needed = protocol.needed_frames()
    moves = protocol.default_moves()
    seqs = sets._sequences(moves)
    clips = sets.Clips()
    rng = np.random.default_rng(11)

    def judge(frames, ch, stored, segments=()):
        return protocol.run_capture(frames, ch, cue_ms=float(rng.uniform(*protocol.CUE_MS)), needed=needed,
                                    stored_hashes=stored, stored_segments=segments, settings=settings)

    # --- fixed clip, repeated tries
    rows = {"before": [], "failed kept": [], "now": []}
    for clip in sorted(clips.items):
        recs, thumbs = clips.variant(clip, "screen")
        t_end = clips.items[clip]["t"][-1]
        c = clips.items[clip]
        for start in np.arange(0, t_end, sets.REPLAY_EVERY_MS / 2):
            # only recordings that hold a whole challenge: `moves` clear turns within the window
            strong = [e for e in c["turns"] if start + 150 <= e[1] <= start + web.window_ms("+".join(seqs[0:1]))]
            if len(strong) < moves:
                continue
            draws = [(seqs[int(rng.integers(len(seqs)))], float(rng.uniform(0, protocol.INTERVAL_MS)) if k else 0.0)
                     for k in range(TRIES)]
            for policy in rows:
                stored, segments, passed = [], [], None
                for k, (ch, phase) in enumerate(draws):
                    if policy == "now":
                        ch = draws[0][0]  # kept until a match
                    frames = protocol.film(recs, thumbs, start + phase, web.window_ms(ch), rng)
                    if frames is None:
                        break
                    cap = judge(frames, ch, stored, segments)
                    if cap.accepted:
                        passed = k + 1
                        break
                    if policy == "before" and not cap.decision.failed:
                        break  # no decision, no count: the same recording gets the same answer again
                    if policy == "failed kept":  # (the first version: a closed capture's passing poses)
                        stored = (stored + passing_poses([f["fh"] for f in cap.frames if f.get("fh")]))[-KEPT:]
                    elif policy == "now":  # every frame as it arrived, flagged turned from its own geometry,
                        # with the motion from the turned face frame before it
                        ref = next((f for f in cap.frames if f.get("dense")), None)
                        faces = [(f["fh"], web.turned_pose(ref, f)) for f in cap.frames if f.get("fh")]
                        stored += [h for h, turned in faces if turned]
                        segments += [(b, a) for (a, ta), (b, tb) in zip(faces, faces[1:]) if ta and tb]
                rows[policy].append((f"{clip}@{start / 1000:.0f}s", passed))
    print(f"Fixed clip holding a whole challenge, from one point, up to {TRIES} tries, {moves} moves per challenge:\n")
    print("| rules | recordings | passed within 10 tries | passed at try 1 | passed at a later try |")
    print("|---|---|---|---|---|")
    for policy, r in rows.items():
        n = len(r)
        ok = [p for _, p in r if p]
        print(f"| {policy} | {n} | {len(ok)} ({len(ok) / max(n, 1):.1%}) | {sum(p == 1 for p in ok)} | "
              f"{sum(p > 1 for p in ok)} |")

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
