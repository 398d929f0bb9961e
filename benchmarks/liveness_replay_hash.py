"""Measure the face-crop perceptual hash (idp.liveness.fingerprint.face_hash) for the replay store.

For frames of the shared clips (2 fps): the Hamming distance between a frame's hash and the hash of a
transformed copy (JPEG q60/q80/q95, rescaled 90 %/110 %, cropped 5 % per side, shifted 12 px), each
copy re-detected by the product's detector; and between *different* frames of the same clip >= 0.5 s
apart (false hits on a live person). Prints the distributions and the rates at each threshold.
``python benchmarks/liveness_replay_hash.py dense`` aligns the crops by the 468 dense landmarks.
"""
from __future__ import annotations

import io
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from liveness_bench import media  # noqa: E402

from idp.liveness.fingerprint import face_hash, hamming  # noqa: E402


def jpeg(rgb, q):
    from PIL import Image
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))


def scale(rgb, f):
    from PIL import Image
    h, w = rgb.shape[:2]
    return jpeg(np.asarray(Image.fromarray(rgb).resize((int(w * f), int(h * f)), Image.BICUBIC)), 90)


def crop(rgb, frac=0.05):
    h, w = rgb.shape[:2]
    return jpeg(np.ascontiguousarray(rgb[int(h * frac):h - int(h * frac), int(w * frac):w - int(w * frac)]), 90)


def shift(rgb, dx=12, dy=8):
    out = np.roll(np.roll(rgb, dy, 0), dx, 1).copy()
    out[:dy] = 0
    out[:, :dx] = 0
    return jpeg(out, 90)


TRANSFORMS = {"jpeg q60": lambda x: jpeg(x, 60), "jpeg q80": lambda x: jpeg(x, 80), "jpeg q95": lambda x: jpeg(x, 95),
              "scale 90%": lambda x: scale(x, 0.9), "scale 110%": lambda x: scale(x, 1.1),
              "crop 5%": crop, "shift 12,8 px": shift}


DENSE = len(sys.argv) > 1 and sys.argv[1] == "dense"


def lm_of(rgb):
    """The landmarks the hash is aligned by: the detector's five (default) or the 468 dense ones."""
    a = media.engine().analyze(rgb, embed="never")
    if a.box is None:
        return None
    if not DENSE:
        return a.landmarks
    from idp.liveness.landmarks import shared_landmarker
    return shared_landmarker()(rgb, a.box, a.landmarks).points


def main():
    same, diff = {k: [] for k in TRANSFORMS}, []
    for path in sorted(media.VIDEO_DIR.glob("*.mp4")):
        hashes = []
        for t, rgb in media.decode_video(path, fps=2):
            lm = lm_of(rgb)
            if lm is None:
                continue
            h = face_hash(rgb, lm)
            hashes.append((t, h))
            for name, fn in TRANSFORMS.items():
                x = fn(rgb)
                l2 = lm_of(x)
                if l2 is not None:
                    same[name].append(hamming(h, face_hash(x, l2)))
        for (t1, h1), (t2, h2) in itertools.combinations(hashes, 2):
            if abs(t2 - t1) >= 500:
                diff.append(hamming(h1, h2))
        print(path.stem, len(hashes), flush=True)
    print("| pair | pairs | distance min / median / 95th pct / max (of 256 bits) |")
    print("|---|---|---|")
    for name, v in list(same.items()) + [("different frames, same clip, >= 0.5 s apart", diff)]:
        v = np.array(v)
        print(f"| {name} | {len(v)} | {v.min()} / {np.median(v):.0f} / {np.percentile(v, 95):.0f} / {v.max()} |")
    allsame = np.concatenate([np.array(v) for v in same.values()])
    d = np.array(diff)
    print("\n| threshold | copies caught | different frames matched (false hits) |\n|---|---|---|")
    for thr in (16, 24, 32, 40, 48, 56, 64):
        print(f"| <= {thr} | {np.mean(allsame <= thr) * 100:.1f}% ({int((allsame <= thr).sum())}/{len(allsame)}) "
              f"| {np.mean(d <= thr) * 100:.2f}% ({int((d <= thr).sum())}/{len(d)}) |")


if __name__ == "__main__":
    main()
