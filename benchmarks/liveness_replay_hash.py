"""Measure the face-crop perceptual hash (idp.liveness.fingerprint.face_hash) for the replay store.

For frames of the shared clips (2 fps): the Hamming distance between a frame's hash and the hash of a
transformed copy (JPEG q60/q80/q95, rescaled 90 %/110 %, cropped 5 % per side, shifted 12 px), each
copy re-detected by the product's detector; and between *different* frames of the same clip >= 0.5 s
apart (false hits on a live person). Prints the distributions and the rates at each threshold.
``python benchmarks/liveness_replay_hash.py dense`` aligns the crops by the 468 dense landmarks (the
product's). ``colour`` measures the COLOUR transforms instead of the geometric ones (greyscale, a blue
cast, gamma, darker, saturation; each then JPEG q90): per transform, the copies whose face is still found,
those within FACE_HASH_MAX_BITS of the original's hash, and how far the landmarks moved (mean over the
points, px) - the hash is of a grey crop, so a colour change reaches it through the grey values and
through the landmarks the crop is aligned by. ``normgrey`` measures a candidate (not the product's): the
detector, the dense landmarks and the hash all on the frame's grey equalised by its face box's histogram
(:func:`normalised_view`).
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


def grey(rgb):
    """Greyscale (ITU-R 601 luma, PIL's "L"), as three equal channels."""
    from PIL import Image
    return np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))


def gains(rgb, r, g, b):
    """Per-channel gains (a white-balance shift), clipped."""
    return np.clip(rgb.astype(np.float32) * np.array([r, g, b], np.float32) + 0.5, 0, 255).astype(np.uint8)


def gamma(rgb, g):
    """255 * (x / 255) ** g on every channel: g < 1 brightens the mid-tones, g > 1 darkens them."""
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
    return lut[rgb]


def saturation(rgb, f):
    """PIL's colour enhancement: blends with the greyscale picture (0 grey, 1 unchanged, > 1 more vivid)."""
    from PIL import Image, ImageEnhance
    return np.asarray(ImageEnhance.Color(Image.fromarray(rgb)).enhance(f))


#: Colour changes a screen filmed again brings (each without re-encoding; the benchmarks add it).
COLOUR = {"greyscale": grey, "blue cast (R x0.8, B x1.2)": lambda x: gains(x, 0.8, 1.0, 1.2),
          "gamma 0.6 (brighter)": lambda x: gamma(x, 0.6), "gamma 1.6 (darker)": lambda x: gamma(x, 1.6),
          "darker x0.6": lambda x: gains(x, 0.6, 0.6, 0.6),
          "saturation x0.5": lambda x: saturation(x, 0.5), "saturation x1.6": lambda x: saturation(x, 1.6)}


TRANSFORMS = {"jpeg q60": lambda x: jpeg(x, 60), "jpeg q80": lambda x: jpeg(x, 80), "jpeg q95": lambda x: jpeg(x, 95),
              "scale 90%": lambda x: scale(x, 0.9), "scale 110%": lambda x: scale(x, 1.1),
              "crop 5%": crop, "shift 12,8 px": shift}


def normalised_grey(rgb, box):
    """A candidate, not the product's: the frame's grey (``to_gray``) equalised by the histogram of its face
    box, as three equal channels - the same picture under greyscale, a brightness, contrast or gamma change
    (any change that keeps the order of the grey values), and nearly so under a colour cast."""
    from idp.liveness.fingerprint import to_gray
    g = np.clip(to_gray(rgb) + 0.5, 0, 255).astype(np.uint8)
    x, y, w, h = (int(round(float(v))) for v in box)
    face = g[max(y, 0):max(y + h, 1), max(x, 0):max(x + w, 1)]
    cdf = np.cumsum(np.bincount(face.ravel(), minlength=256)).astype(np.float64)
    lut = np.clip(np.round(255.0 * cdf / max(cdf[-1], 1.0)), 0, 255).astype(np.uint8)
    return np.repeat(lut[g][..., None], 3, axis=2)


DENSE = "dense" in sys.argv[1:] or "normgrey" in sys.argv[1:]
NORM = "normgrey" in sys.argv[1:]  # the candidate: detector, dense landmarks and hash on normalised_view


def lm_of(rgb):
    """The landmarks the hash is aligned by: the detector's five (default) or the 468 dense ones."""
    a = media.engine().analyze(rgb, embed="never")
    if a.box is None:
        return None
    if not DENSE:
        return a.landmarks
    from idp.liveness.landmarks import shared_landmarker
    return shared_landmarker()(rgb, a.box, a.landmarks).points


def normalised_view(rgb):
    """:func:`normalised_grey` of a frame by the face box the detector finds in it (the frame itself
    without a face)."""
    a = media.engine().analyze(rgb, embed="never")
    return rgb if a.box is None else normalised_grey(rgb, a.box)


def points(lm) -> np.ndarray:
    """The landmarks as an (n, 2) array (the five of a dict, or the dense ones)."""
    from idp.liveness.geometry import landmark_array
    return landmark_array(lm) if isinstance(lm, dict) else np.asarray(lm, np.float64)[:, :2]


def main():
    from idp.liveness.fingerprint import FACE_HASH_MAX_BITS
    colour = "colour" in sys.argv[1:]
    transforms = {k: (lambda x, fn=fn: jpeg(fn(x), 90)) for k, fn in
                  {"no colour change (baseline)": lambda x: x, **COLOUR}.items()} if colour else TRANSFORMS
    same, diff = {k: [] for k in transforms}, []
    lost, moved, kept = {k: 0 for k in transforms}, {k: [] for k in transforms}, {k: [] for k in transforms}
    boxed = {k: [] for k in transforms}
    view = normalised_view if NORM else (lambda x: x)
    for path in sorted(media.VIDEO_DIR.glob("*.mp4")):
        hashes = []
        for t, rgb in media.decode_video(path, fps=2):
            raw, rgb = rgb, view(rgb)
            lm = lm_of(rgb)
            if lm is None:
                continue
            h = face_hash(rgb, lm)
            hashes.append((t, h))
            a0 = media.engine().analyze(rgb, embed="never") if DENSE else None
            for name, fn in transforms.items():
                x = view(fn(raw))
                l2 = lm_of(x)
                if l2 is None:
                    lost[name] += 1
                    continue
                same[name].append(hamming(h, face_hash(x, l2)))
                if colour:  # the same geometry: how far the landmarks moved, and the hash of the copy aligned
                    # by the original's landmarks (what the pixels alone change)
                    moved[name].append(float(np.linalg.norm(points(l2) - points(lm), axis=1).mean()))
                    kept[name].append(hamming(h, face_hash(x, lm)))
                    if a0 is not None and a0.box is not None:  # the dense model on the copy, from the original's box
                        from idp.liveness.landmarks import shared_landmarker
                        lb = shared_landmarker()(x, a0.box, a0.landmarks).points
                        boxed[name].append((hamming(h, face_hash(x, lb)),
                                            float(np.linalg.norm(points(lb) - points(lm), axis=1).mean())))
        for (t1, h1), (t2, h2) in itertools.combinations(hashes, 2):
            if abs(t2 - t1) >= 500:
                diff.append(hamming(h1, h2))
        print(path.stem, len(hashes), flush=True)
    print("| pair | pairs | distance min / median / 95th pct / max (of 256 bits) |")
    print("|---|---|---|")
    for name, v in list(same.items()) + [("different frames, same clip, >= 0.5 s apart", diff)]:
        v = np.array(v)
        print(f"| {name} | {len(v)} | {v.min()} / {np.median(v):.0f} / {np.percentile(v, 95):.0f} / {v.max()} |")
    print(f"\n| transform | face found | caught (<= {FACE_HASH_MAX_BITS} bits) | landmarks moved, px: median / 95th "
          f"pct | caught aligned by the original's landmarks (pixels alone) | dense model from the original's "
          f"box: caught, landmarks moved px median |")
    print("|---|---|---|---|---|---|")
    for name, v in same.items():
        v, m, k, b = np.array(v), np.array(moved[name]), np.array(kept[name]), np.array(boxed[name])
        n, t = len(v) + lost[name], FACE_HASH_MAX_BITS
        print(f"| {name} | {len(v)}/{n} | {np.mean(v <= t) * 100:.1f}% ({int((v <= t).sum())}/{n}) | "
              + (f"{np.median(m):.2f} / {np.percentile(m, 95):.2f} | "
                 f"{np.mean(k <= t) * 100:.1f}% ({int((k <= t).sum())}/{len(k)}) | " if len(m) else "n/a | n/a | ")
              + (f"{np.mean(b[:, 0] <= t) * 100:.1f}% ({int((b[:, 0] <= t).sum())}/{len(b)}), "
                 f"{np.median(b[:, 1]):.2f} |" if len(b) else "n/a |"))
    allsame = np.concatenate([np.array(v) for v in same.values()])
    d = np.array(diff)
    print("\n| threshold | copies caught | different frames matched (false hits) |\n|---|---|---|")
    for thr in (16, 24, 32, 40, 48, 56, 64):
        print(f"| <= {thr} | {np.mean(allsame <= thr) * 100:.1f}% ({int((allsame <= thr).sum())}/{len(allsame)}) "
              f"| {np.mean(d <= thr) * 100:.2f}% ({int((d <= thr).sum())}/{len(d)}) |")


if __name__ == "__main__":
    main()
