"""Data for the liveness evaluation: real clips and rendered attacks, run through the product's
face detector and the dense landmark model, cached under /tmp (LIVENESS_CACHE).

Per sequence: ``<name>.json`` (kind, frames: t_ms, box, 5 landmarks, frame size) and
``<name>_dense.npy`` ((n, 468, 3) float32 frame-pixel landmarks, NaN where no face) and
``<name>_thumbs.npy`` (32x32 grey thumbnails). Nothing is written into the repository.

Attack kinds rendered here (16 frames at 6.4 fps, 640x480, sensor noise + JPEG q85), each from a
colour-LFW photo and from a frame of a shared talking-head clip:

* ``print_yaw25`` / ``print_yaw40`` / ``print_yaw55``: a flat print turned about its vertical axis
  to 25/40/55 degrees (perspective camera, 700 px focal length) and most of the way back;
* ``bent_yaw35``: the print bent into a cylinder (edges 18 % of its width behind the centre, i.e.
  ~18 mm for a 10 cm wide face print) and turned 35 degrees;
* ``static``: the print held still; ``affine``: moved, rotated in-plane, scaled; ``tilt_pitch``:
  turned about its horizontal axis 25-50 degrees; ``mixed``: all at once.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import liveness_eval as old  # noqa: E402  (renderer, decoder, detector of the five-landmark study)

CACHE = Path(os.environ.get("LIVENESS_CACHE", "/tmp/liveness_cache")) / "v3"
ATTACK_KINDS = ("print_yaw25", "print_yaw40", "print_yaw55", "bent_yaw35", "static", "affine", "tilt_pitch", "mixed")
N_LFW_PER_KIND = 12  # LFW people per print / bent-paper kind (and 12 clip frames)
N_LFW_OTHER = 6  # ... per other kind (static, affine, tilt_pitch, mixed; and 3 clip frames): 2 cores, a time budget
CLIP_SOURCES = ("d0", "d3", "d9", "d10", "d11", "d12", "d13", "d14", "d18", "d19", "d20", "d6")

_lm = None


def landmarker():
    global _lm
    if _lm is None:
        from idp.liveness.landmarks import DenseLandmarker
        _lm = DenseLandmarker()
    return _lm


def analyse(rgb: np.ndarray) -> tuple[dict, np.ndarray]:
    """(detector record, dense (468, 3) or NaN) for one frame, as the product computes them."""
    rec = old.detect(rgb) or {}
    dense = np.full((468, 3), np.nan, np.float32)
    if rec:
        lm5 = {k: tuple(v) for k, v in rec["landmarks"].items()}
        d = landmarker()(rgb, rec["box"], lm5)
        dense = d.points
        rec["presence"] = d.presence
    return rec, dense


def _save(name: str, meta: dict, frames: list, dense: list, thumbs: list) -> None:
    out = CACHE
    np.save(out / f"{name}_dense.npy", np.stack(dense))
    np.save(out / f"{name}_thumbs.npy", np.stack(thumbs))
    (out / f"{name}.json").write_text(json.dumps({**meta, "frames": frames}))


def extract_videos() -> None:
    from idp.liveness import thumbnail

    CACHE.mkdir(parents=True, exist_ok=True)
    for path in sorted(old.VIDEO_DIR.glob("*.mp4")):
        name = f"clip__{path.stem}"
        if (CACHE / f"{name}.json").exists():
            continue
        t0 = time.time()
        frames, dense, thumbs = [], [], []
        for t_ms, rgb in old.decode_video(path):
            rec, d = analyse(rgb)
            rec.update(t_ms=t_ms, frame_w=rgb.shape[1], frame_h=rgb.shape[0])
            frames.append(rec)
            dense.append(d)
            thumbs.append(thumbnail(rgb))
        _save(name, {"kind": "clip", "clip": path.stem}, frames, dense, thumbs)
        print(f"{name}: {len(frames)} frames in {time.time() - t0:.0f}s", flush=True)


def _poses(kind: str, rng, n: int) -> list[dict]:
    """Per-frame paper poses: still, turn to the target, hold, most of the way back."""

    sgn = rng.choice([-1.0, 1.0])
    base = dict(dist=rng.uniform(0.75, 1.0), shift=(rng.uniform(-40, 40), rng.uniform(-30, 30)))
    a, b = rng.uniform(0.1, 0.25), rng.uniform(0.45, 0.6)

    def swing(amp):
        return lambda s: amp * (min(max((s - a) / (b - a), 0.0), 1.0) if s <= b else max(0.3, 1 - 0.7 * (s - b) / (1 - b)))

    s_ = [i / (n - 1) for i in range(n)]
    if kind.startswith("print_yaw"):
        f = swing(sgn * float(kind[len("print_yaw"):]))
        # hand tremor: small in-plane jitter
        return [dict(base, yaw=f(s), roll=rng.normal(0, 0.7)) for s in s_]
    if kind == "bent_yaw35":
        f = swing(sgn * 35.0)
        return [dict(base, yaw=f(s), bend=0.18, roll=rng.normal(0, 0.7)) for s in s_]
    if kind == "static":
        return [dict(base) for _ in s_]
    if kind in ("affine", "tilt_pitch", "mixed"):
        return old.attack_params(kind, rng)[:n]
    raise ValueError(kind)


def _clip_photo(clip: str, rng):
    """A frame of a shared clip as a print (the victim's own video frame, frontal, cropped around the head)."""
    from PIL import Image, ImageOps

    frames = list(old.decode_video(old.VIDEO_DIR / f"{clip}.mp4", fps=2))
    t, rgb = frames[int(rng.integers(0, max(1, len(frames) // 3)))]
    h, w = rgb.shape[:2]
    side = min(h, w)
    im = Image.fromarray(rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side])
    size = int(rng.uniform(280, 360))
    im = im.resize((size, size), Image.BICUBIC)
    return ImageOps.expand(im, border=int(size * 0.06), fill=(245, 245, 240))


def build_attacks() -> None:
    from idp.liveness import thumbnail

    CACHE.mkdir(parents=True, exist_ok=True)
    people = sorted(p for p in old.PHOTO_DIR.iterdir() if p.is_dir())
    jobs = []
    for ki, kind in enumerate(ATTACK_KINDS):
        turned = kind in ("print_yaw25", "print_yaw40", "print_yaw55", "bent_yaw35")
        for j in range(N_LFW_PER_KIND if turned else N_LFW_OTHER):
            person = people[(ki * 7 + j) % len(people)]
            jobs.append((kind, "lfw", person.name, 10_000 + 100 * ki + j))
        for j, clip in enumerate(CLIP_SOURCES if turned else CLIP_SOURCES[:3]):
            jobs.append((kind, "clip", clip, 20_000 + 100 * ki + j))
    t0 = time.time()
    for idx, (kind, src, who, seed) in enumerate(jobs):
        name = f"attack__{kind}__{src}__{who}"
        if (CACHE / f"{name}.json").exists():
            continue
        rng = np.random.default_rng(seed)
        if src == "lfw":
            photo = old._photo_with_border(sorted((old.PHOTO_DIR / who).glob("*.jpg"))[0], rng)
        else:
            photo = _clip_photo(who, rng)
        bg = old._background(rng)
        frames, dense, thumbs = [], [], []
        for i, pose in enumerate(_poses(kind, rng, old.ATTACK_FRAMES)):
            rgb = old._camera(old.render_paper(photo, bg, **pose), rng)
            if i == 8 and idx % 10 == 0:
                from PIL import Image
                Image.fromarray(rgb).save(CACHE / f"{name}_mid.jpg")
            rec, d = analyse(rgb)
            rec.update(t_ms=i * 1000.0 / old.ATTACK_FPS + float(rng.normal(0, 8)), frame_w=old.FRAME[0],
                       frame_h=old.FRAME[1], pose={k: v for k, v in pose.items() if k != "shift"})
            frames.append(rec)
            dense.append(d)
            thumbs.append(thumbnail(rgb))
        _save(name, {"kind": kind, "source": src, "who": who}, frames, dense, thumbs)
        print(f"[{idx + 1}/{len(jobs)}] {name}: {sum('box' in f for f in frames)}/{len(frames)} faces "
              f"({time.time() - t0:.0f}s)", flush=True)


def load(path: Path):
    """(meta, [FrameObservation]) of a cached sequence, with dense landmarks."""
    from idp.liveness import FrameObservation

    meta = json.loads(path.read_text())
    dense = np.load(path.with_name(path.stem + "_dense.npy"))
    thumbs = np.load(path.with_name(path.stem + "_thumbs.npy"))
    obs = []
    for f, d, th in zip(meta["frames"], dense, thumbs):
        ok = "box" in f
        obs.append(FrameObservation(t_ms=f["t_ms"], box=tuple(f["box"]) if ok else None,
                                    landmarks={k: tuple(v) for k, v in f["landmarks"].items()} if ok else None,
                                    frame_w=f["frame_w"], frame_h=f["frame_h"], thumb=th,
                                    dense=d if ok and np.all(np.isfinite(d)) else None))
    return meta, obs


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("videos", "all"):
        extract_videos()
    if what in ("attacks", "all"):
        build_attacks()
