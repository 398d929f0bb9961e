"""Perceptual replay store, mirrored look-up: mirrored replays caught, genuine later bursts refused.

For each shared clip, frames every 150 ms of its first 15 s (``liveness_replay_store.frames``); a stored
capture is each 3 s window (every 7th frame) with 4 or more turned frames; its replay is the same window
filmed again (``filmed_again``) and mirrored; the genuine captures are the later windows of the same clip.
Counts captures with >= FACE_HASH_MIN_FRAMES near copies (copies of turned stored frames; segments for
turned new frames), with the frame's hash alone and with its mirrored hash too (docs/liveness.md).

    .venv/bin/python benchmarks/liveness_replay_mirrored.py d0,d10,d11,d12,d13,d14,d18,d19,d20,d3,d6,d9
"""
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import liveness_replay_store as B  # noqa: E402
from idp.config import Config  # noqa: E402
from idp.face import get_engine  # noqa: E402
from idp.liveness.fingerprint import near_copy, FACE_HASH_MAX_BITS as T  # noqa: E402
from idp.liveness import rigidity  # noqa: E402
from idp.faceweb.liveness import TURNED_DEG, FACE_HASH_MIN_FRAMES as M, dense_fields, observations  # noqa: E402
clips_wanted = sys.argv[1].split(",")
engine, rng = get_engine(Config().data_dir), np.random.default_rng(1)
def one(rgb):
    """(face hash, mirrored face hash, dense landmarks) of a frame as the capture API stores and reads them."""
    a = engine.analyze(rgb)
    fields = dense_fields(rgb, a)
    if not fields:
        return None
    frame = {"t_ms": 0, "box": list(a.box), "landmarks": a.landmarks, **fields}
    return fields["fh"], fields["fhm"], observations({"frames": [frame]})[0].dense
out = {}
for name in clips_wanted:
    clip = B.CLIPS / f"{name}.mp4"
    rate = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=r_frame_rate",
                           "-of", "csv=p=0", str(clip)], capture_output=True, text=True, check=True).stdout.strip()
    num, _, den = rate.partition("/")
    fr = B.frames(clip)
    fps = float(num) / float(den or 1)
    step = max(1, int(round(fps * 0.15)))
    idx = list(range(0, len(fr), step))
    orig = {i: one(fr[i]) for i in idx}
    mir = {i: one(np.ascontiguousarray(B.filmed_again(fr[i], rng)[:, ::-1])) for i in idx}
    out[name] = {"fps": fps, "idx": idx, "orig": orig, "mir": mir}
    print("analysed", name, len(idx), file=sys.stderr, flush=True)

def moved(ref, pts):
    p = rigidity.compare(ref, pts)
    return max(abs(float(p["yaw"])), abs(float(p["pitch"])))
N = int(B.BURST_S / B.PERIOD_S) + 1
for name, c in out.items():
    idx = c["idx"]
    def burst(kind, k0):
        got = [c[kind][idx[k]] for k in range(k0, min(k0 + N, len(idx))) if c[kind][idx[k]]]
        if not got:
            return []
        ref = got[0][2]
        return [(h, hm, moved(ref, p) >= TURNED_DEG) for h, hm, p in got]
    g_plain = g_mirror = n_gen = r_plain = r_mirror = n_rep = 0
    for k0 in range(0, len(idx) - N, 7):
        stored = burst("orig", k0)
        if sum(t for *_, t in stored) < 4:
            continue
        singles = [h for h, _, t in stored if t]
        pairs = [(a, b) for (a, _, ta), (b, _, tb) in zip(stored, stored[1:]) if ta and tb]
        def count(new, mirror):
            n = 0
            for h, hm, t in new:
                hs = [h, hm] if mirror else [h]
                n += any(near_copy(x, singles, T, segments=pairs if t else ()) for x in hs)
            return n
        for k1 in range(k0 + N, len(idx) - N + 1, 7):
            new = burst("orig", k1)
            n_gen += 1
            g_plain += count(new, False) >= M
            g_mirror += count(new, True) >= M
        rep = burst("mir", k0)
        n_rep += 1
        r_plain += count(rep, False) >= M
        r_mirror += count(rep, True) >= M
    print(f"{name}: genuine later bursts refused plain {g_plain}/{n_gen}, with mirror {g_mirror}/{n_gen}; "
          f"mirrored replays caught plain {r_plain}/{n_rep}, with mirror {r_mirror}/{n_rep}", flush=True)
