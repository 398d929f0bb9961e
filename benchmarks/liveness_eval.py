"""Evaluate the liveness checks (idp.liveness) on real videos and synthesised attacks.

Usage::

    .venv/bin/python benchmarks/liveness_eval.py            # extract (cached) + evaluate + write docs
    .venv/bin/python benchmarks/liveness_eval.py extract    # only landmark extraction
    .venv/bin/python benchmarks/liveness_eval.py evaluate   # only evaluation from the cache

Landmarks are extracted once with the face engine's detector (idp.face.detector.FaceDetector:
MTCNN on a copy downscaled to 320 px, exactly as at sign-in)
and cached as JSON + .npy under /tmp/liveness_cache (override with LIVENESS_CACHE). Nothing
here writes frames or data into the repository; only docs/liveness.md and docs/img/liveness-*.png.

Sets (ISO/IEC 30107-3 terms):

* bona fide: bursts cut from the 12 real talking-head clips, subsampled to ~7 fps, each
  evaluated against the challenge the person performs in that stretch of video.
* attack "static": one colour LFW photo pasted into a 640x480 frame, held still (camera noise
  and JPEG re-encoding only).
* attack "moving photo": the same kind of frame animated over ~2.5 s with translation, in-plane
  rotation, scale and perspective tilts (yaw or pitch of the paper), and a bent-paper variant.
* attack "replay": the real clips evaluated against challenges the clip never performs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))
CACHE = Path(os.environ.get("LIVENESS_CACHE", "/tmp/liveness_cache")) / "v2"
VIDEO_DIR = FACES_DIR / "video" / "liveportrait_driving"
EXTRACT_FPS = 15  # frames decoded per second of video; bursts are subsampled from these
MAX_SIDE = 640

_detector = None


def detector():
    """The face engine's detector (MTCNN on a copy downscaled to 320 px, as in production)."""
    global _detector
    if _detector is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        from idp.face.detector import FaceDetector

        _detector = FaceDetector()
    return _detector


def detect(rgb: np.ndarray) -> dict | None:
    """Largest face in ``rgb`` as a JSON-able dict, or None."""
    faces = detector().detect(rgb)
    if not faces:
        return None
    f = max(faces, key=lambda d: d.area)
    return {
        "box": [float(v) for v in f.box],
        "landmarks": {k: [float(v[0]), float(v[1])] for k, v in f.landmarks.items()},
        "confidence": float(f.confidence),
        "n_faces": len(faces),
    }


def decode_video(path: Path, fps: int = EXTRACT_FPS):
    """Yield (t_ms, rgb) frames of ``path`` resampled to ``fps`` with ffmpeg."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(",")[:2])
    s = min(1.0, MAX_SIDE / max(w, h))
    ow, oh = int(round(w * s / 2) * 2), int(round(h * s / 2) * 2)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"fps={fps},scale={ow}:{oh}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n = ow * oh * 3
    i = 0
    while True:
        buf = proc.stdout.read(n)
        if len(buf) < n:
            break
        yield i * 1000.0 / fps, np.frombuffer(buf, np.uint8).reshape(oh, ow, 3)
        i += 1
    proc.wait()


def extract_videos() -> None:
    from idp.liveness import thumbnail

    out = CACHE / "videos"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(VIDEO_DIR.glob("*.mp4")):
        meta_path = out / f"{path.stem}.json"
        if meta_path.exists():
            continue
        t0 = time.time()
        frames, thumbs = [], []
        for t_ms, rgb in decode_video(path):
            rec = detect(rgb) or {}
            rec.update(t_ms=t_ms, frame_w=rgb.shape[1], frame_h=rgb.shape[0])
            frames.append(rec)
            thumbs.append(thumbnail(rgb))
        np.save(out / f"{path.stem}_thumbs.npy", np.stack(thumbs))
        meta_path.write_text(json.dumps({"video": path.name, "fps": EXTRACT_FPS, "frames": frames}))
        print(f"{path.name}: {len(frames)} frames in {time.time() - t0:.0f}s", flush=True)


# --------------------------------------------------------------------------------------------
# synthesised photo attacks
# --------------------------------------------------------------------------------------------
PHOTO_DIR = FACES_DIR / "lfw_color65_240px"
FRAME = (640, 480)
ATTACK_FPS = 6.4  # 16 frames over 2.5 s: a capture burst
ATTACK_FRAMES = 16
MOTIONS = ("affine", "tilt_yaw", "tilt_pitch", "mixed", "bend_yaw")


def _rot(yaw, pitch, roll):
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _background(rng) -> "Image.Image":
    from PIL import Image, ImageFilter

    small = rng.uniform(50, 190, (6, 8, 3)).astype(np.uint8)
    return Image.fromarray(small).resize(FRAME, Image.BICUBIC).filter(ImageFilter.GaussianBlur(20))


def render_paper(photo, bg, yaw=0.0, pitch=0.0, roll=0.0, dist=1.0, shift=(0.0, 0.0), bend=0.0, strips=16):
    """Render ``photo`` (PIL RGB, with a white print border) as a sheet of paper held in front of a
    pinhole camera: rotated (degrees), at relative distance ``dist``, shifted (px), bent around its
    vertical axis (``bend`` = depth of the sheet's edges in sheet widths). Returns RGB uint8."""
    from PIL import Image, ImageDraw

    pw, ph = photo.size
    f = 700.0
    z0 = 700.0 * dist  # sheet width ~ pw px at z0=700 when dist=1
    r = _rot(yaw, pitch, roll)
    out = bg.copy()
    xs = np.linspace(0, pw, strips + 1)
    for i in range(strips):
        xa, xb = xs[i], xs[i + 1]
        corners_src = np.array([[xa, 0], [xb, 0], [xb, ph], [xa, ph]], float)
        p3 = np.c_[corners_src[:, 0] - pw / 2, corners_src[:, 1] - ph / 2, np.zeros(4)]
        p3[:, 2] = -bend * pw * (p3[:, 0] / (pw / 2)) ** 2
        q = p3 @ r.T
        z = z0 - q[:, 2]
        dst = np.c_[f * q[:, 0] / z + FRAME[0] / 2 + shift[0], f * q[:, 1] / z + FRAME[1] / 2 + shift[1]]
        # PIL's PERSPECTIVE wants the map output -> input
        a = []
        for (x, y), (u, v) in zip(dst, corners_src):
            a.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        coeffs = np.linalg.solve(np.array(a), corners_src.flatten())
        warped = photo.transform(FRAME, Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR)
        mask = Image.new("L", FRAME, 0)
        ImageDraw.Draw(mask).polygon([tuple(p) for p in dst], fill=255)
        out.paste(warped, (0, 0), mask)
    return np.asarray(out)


def _camera(rgb, rng, quality=85):
    """Sensor noise and JPEG round trip (what the browser sends)."""
    import io

    from PIL import Image

    noisy = np.clip(rgb.astype(np.float32) + rng.normal(0, 2.0, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _profile(rng, amp, kind="swing"):
    """s in [0,1] -> value. "swing": still, move to ``amp``, hold, most of the way back;
    "wander": a random smooth sine of 0.5-1.5 cycles."""
    if kind == "swing":
        a, b = rng.uniform(0.1, 0.3), rng.uniform(0.45, 0.65)

        def f(s):
            if s <= b:
                return amp * min(max((s - a) / (b - a), 0.0), 1.0)
            return amp * max(0.2, 1 - 0.8 * (s - b) / (1 - b))
        return f
    ph, fr = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 1.5)
    return lambda s: amp * math.sin(2 * math.pi * fr * s + ph)


def attack_params(kind: str, rng) -> list[dict]:
    """Per-frame paper poses for one attack sequence of motion type ``kind``."""
    n = ATTACK_FRAMES
    sgn = lambda: rng.choice([-1.0, 1.0])  # noqa: E731
    base = dict(dist=rng.uniform(0.75, 1.0), shift=(rng.uniform(-40, 40), rng.uniform(-30, 30)))
    if kind == "affine":
        tx, ty, rr, sc = _profile(rng, sgn() * rng.uniform(40, 100), "wander"), _profile(rng, rng.uniform(20, 50), "wander"), \
            _profile(rng, sgn() * rng.uniform(10, 30), "swing"), _profile(rng, rng.uniform(0.1, 0.25), "wander")
        return [dict(base, roll=rr(i / (n - 1)), dist=base["dist"] * (1 + sc(i / (n - 1))),
                     shift=(base["shift"][0] + tx(i / (n - 1)), base["shift"][1] + ty(i / (n - 1)))) for i in range(n)]
    if kind == "tilt_yaw":
        y = _profile(rng, sgn() * rng.uniform(25, 50), "swing")
        return [dict(base, yaw=y(i / (n - 1))) for i in range(n)]
    if kind == "tilt_pitch":
        p = _profile(rng, sgn() * rng.uniform(25, 50), "swing")
        return [dict(base, pitch=p(i / (n - 1))) for i in range(n)]
    if kind == "mixed":
        y, p, r = (_profile(rng, sgn() * rng.uniform(10, 35), "wander") for _ in range(3))
        tx = _profile(rng, rng.uniform(20, 80), "wander")
        return [dict(base, yaw=y(i / (n - 1)), pitch=p(i / (n - 1)), roll=r(i / (n - 1)) * 0.5,
                     shift=(base["shift"][0] + tx(i / (n - 1)), base["shift"][1])) for i in range(n)]
    if kind == "bend_yaw":
        bend = rng.uniform(0.08, 0.2)
        y = _profile(rng, sgn() * rng.uniform(25, 45), "swing")
        return [dict(base, bend=bend, yaw=y(i / (n - 1))) for i in range(n)]
    if kind == "static":
        return [dict(base) for _ in range(n)]
    raise ValueError(kind)


def _photo_with_border(path: Path, rng):
    from PIL import Image, ImageOps

    im = Image.open(path).convert("RGB")
    size = int(rng.uniform(280, 360))  # face ~120-150 px wide in the frame: a webcam close-up
    im = im.resize((size, size), Image.BICUBIC)
    return ImageOps.expand(im, border=int(size * 0.06), fill=(245, 245, 240))


def build_photo_attacks() -> None:
    """Render and run MTCNN on the static and moving-photo attack sequences (cached)."""
    from idp.liveness import thumbnail

    out = CACHE / "attacks"
    out.mkdir(parents=True, exist_ok=True)
    people = sorted(p for p in PHOTO_DIR.iterdir() if p.is_dir())
    jobs = []
    for k, person in enumerate(people):
        photos = sorted(person.glob("*.jpg"))
        if len(photos) < 3:
            continue
        jobs.append(("static", person.name, photos[2], 1000 + k))
        for j in range(2):
            jobs.append((MOTIONS[(2 * k + j) % len(MOTIONS)], person.name, photos[j], 2000 + 10 * k + j))
    t0 = time.time()
    for idx, (kind, who, photo_path, seed) in enumerate(jobs):
        key = f"{kind}__{photo_path.stem}"
        meta_path = out / f"{key}.json"
        if meta_path.exists():
            continue
        rng = np.random.default_rng(seed)
        photo = _photo_with_border(photo_path, rng)
        bg = _background(rng)
        frames, thumbs = [], []
        for i, pose in enumerate(attack_params(kind, rng)):
            rgb = _camera(render_paper(photo, bg, **pose), rng)
            if i == 0 and idx < 12:
                from PIL import Image
                Image.fromarray(rgb).save(out / f"{key}_first.jpg")
            rec = detect(rgb) or {}
            rec.update(t_ms=i * 1000.0 / ATTACK_FPS + rng.normal(0, 8), frame_w=FRAME[0], frame_h=FRAME[1])
            frames.append(rec)
            thumbs.append(thumbnail(rgb))
        frames.sort(key=lambda r: r["t_ms"])
        np.save(out / f"{key}_thumbs.npy", np.stack(thumbs))
        meta_path.write_text(json.dumps({"kind": kind, "identity": who, "photo": photo_path.name, "frames": frames}))
        print(f"[{idx + 1}/{len(jobs)}] {key}: {sum('landmarks' in f for f in frames)}/{len(frames)} faces "
              f"({time.time() - t0:.0f}s)", flush=True)


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
DOC = ROOT / "docs" / "liveness.md"
IMG = ROOT / "docs" / "img"
POOL = ("turn_left", "turn_right")  # challenges evaluated (the default pool); see docs for look_up
ALL_CH = ("turn_left", "turn_right", "look_up", "look_down", "move_closer")
GT_SMOOTH = 5  # median filter (frames at 15 fps) for the ground-truth trajectories
GT_TURN = 0.10  # |u - neutral| a visible head turn reaches (checked on contact sheets)
GT_MIN_FRAMES = 3  # ... for at least this many frames at 15 fps (0.2 s)
GT_FRONTAL = 0.04  # |u - neutral| of a frontal pose (where a bona fide burst may start)


def load_sequence(path: Path):
    from idp.liveness import FrameObservation

    meta = json.loads(path.read_text())
    thumbs = np.load(path.with_name(path.stem + "_thumbs.npy"))
    obs = []
    for f, th in zip(meta["frames"], thumbs):
        lm = {k: tuple(v) for k, v in f["landmarks"].items()} if "landmarks" in f else None
        obs.append(FrameObservation(t_ms=f["t_ms"], box=tuple(f["box"]) if lm else None, landmarks=lm,
                                    frame_w=f["frame_w"], frame_h=f["frame_h"], thumb=th))
    return meta, obs


def trajectory(obs):
    """Per-frame canonical nose u (nan without face), smoothed at 15 fps."""
    from idp.liveness.core import _median_filter
    from idp.liveness.geometry import canonical_nose

    u = np.array([(canonical_nose(o.landmarks) or (np.nan, np.nan))[0] if o.has_face else np.nan for o in obs])
    ok = np.isfinite(u)
    us = np.full_like(u, np.nan)
    us[ok] = _median_filter(u[ok], GT_SMOOTH)
    return u, us


def ground_truth_events(obs):
    """Head turns visible in a clip: (challenge, peak time ms, peak |du|) per excursion beyond GT_TURN."""
    _, us = trajectory(obs)
    neutral = np.nanmedian(us)
    t = np.array([o.t_ms for o in obs])
    events = []
    for name, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
        d = sign * (us - neutral)
        above = np.nan_to_num(d, nan=-1) >= GT_TURN
        i = 0
        while i < len(d):
            if above[i]:
                j = i
                while j < len(d) and above[j]:
                    j += 1
                if j - i >= GT_MIN_FRAMES:
                    k = i + int(np.nanargmax(d[i:j]))
                    events.append((name, float(t[k]), float(d[k])))
                i = j
            else:
                i += 1
    return sorted(events, key=lambda e: e[1]), float(neutral)


def burst(obs, start_ms: float, step: int, n: int, rng):
    """Frames of a clip from ``start_ms``, every ``step``-th frame (15 fps source), timestamps jittered."""
    import dataclasses

    i0 = int(np.searchsorted([o.t_ms for o in obs], start_ms))
    idx = list(range(i0, len(obs), step))[:n]
    if len(idx) < n:
        return None
    return [dataclasses.replace(obs[i], t_ms=obs[i].t_ms - obs[i0].t_ms + float(rng.normal(0, 8))) for i in idx]


def build_sets(rng):
    """(bona_fide, attacks): lists of (label, challenge, observations, meta-dict)."""
    bona, attacks = [], {"static photo": [], "moving photo": [], "replay (challenge not performed)": []}
    clips, skipped = {}, []
    for path in sorted((CACHE / "videos").glob("*.json")):
        meta, obs = load_sequence(path)
        events, neutral = ground_truth_events(obs)
        clips[path.stem] = dict(obs=obs, events=events, neutral=neutral, skipped=skipped)
        performed = {e[0] for e in events}
        _, us = trajectory(obs)
        t = np.array([o.t_ms for o in obs])
        for ch, t_peak, _ in events:
            # a sign-in burst starts with the user facing the camera: start points are frames
            # 0.4-2.0 s before the peak where the head is frontal (|u - neutral| < GT_FRONTAL)
            cand = np.flatnonzero((t >= t_peak - 2000) & (t <= t_peak - 400)
                                  & (np.abs(np.nan_to_num(us - neutral, nan=1.0)) < GT_FRONTAL))
            if len(cand) == 0:
                skipped.append((path.stem, ch, t_peak))
                continue
            for i in sorted(set(cand[np.linspace(0, len(cand) - 1, 3).round().astype(int)])):
                for step, n in ((2, 19), (3, 13)):  # 7.5 fps x 2.5 s, 5 fps x 2.4 s
                    b = burst(obs, t[i], step, n, rng)
                    if b is not None:
                        bona.append((path.stem, ch, b, dict(t_peak=t_peak, start=t[i], step=step)))
        duration = obs[-1].t_ms
        for start in np.arange(0, duration, 500.0):
            for step, n in ((2, 19),):
                b = burst(obs, start, step, n, rng)
                if b is None:
                    continue
                for ch in POOL:
                    if ch not in performed:
                        attacks["replay (challenge not performed)"].append((path.stem, ch, b, dict(start=start)))
    for path in sorted((CACHE / "attacks").glob("*.json")):
        meta, obs = load_sequence(path)
        kind = "static photo" if meta["kind"] == "static" else "moving photo"
        for ch in POOL:
            attacks[kind].append((meta["kind"], ch, obs, dict(photo=meta["photo"])))
    return bona, attacks, clips


def run(sets, settings):
    from idp.liveness import assess

    return [(label, ch, assess(obs, ch, settings), m) for label, ch, obs, m in sets]


def rate(results):
    n = len(results)
    k = sum(1 for r in results if r[2].passed)
    return k, n


def evaluate() -> int:
    import collections
    import dataclasses

    from idp.liveness import LivenessSettings, assess

    rng = np.random.default_rng(5)
    settings = LivenessSettings()
    bona, attacks, clips = build_sets(rng)
    res_b = run(bona, settings)
    res_a = {k: run(v, settings) for k, v in attacks.items()}
    lines = []
    out = lines.append
    k, n = rate(res_b)
    bpcer = 1 - k / n if n else float("nan")
    out(f"BPCER {bpcer:.3f} ({n - k}/{n})")
    for kind, res in res_a.items():
        k, n = rate(res)
        out(f"APCER {kind}: {k / n if n else float('nan'):.3f} ({k}/{n})")
    # per motion sub-type
    sub = collections.defaultdict(list)
    for r in res_a["moving photo"]:
        sub[r[0]].append(r)
    for kind, res in sorted(sub.items()):
        k, n = rate(res)
        out(f"  moving photo / {kind}: {k}/{n}")
    reasons = {kind: collections.Counter(r[2].reasons[0] if r[2].reasons else "passed" for r in res) for kind, res in res_a.items()}
    reasons["bona fide"] = collections.Counter(r[2].reasons[0] if r[2].reasons else "passed" for r in res_b)
    for kind, c in reasons.items():
        out(f"  first reason, {kind}: {dict(c)}")
    for name, c in clips.items():
        out(f"clip {name}: neutral u={c['neutral']:.3f} events={[(e[0], round(e[1] / 1000, 1), round(e[2], 2)) for e in c['events']]}")
    # threshold sweep
    out("yaw_threshold sweep: thr BPCER replay static moving")
    for thr in (0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.14):
        st = dataclasses.replace(settings, yaw_threshold=thr)
        rb = run(bona, st)
        kb, nb = rate(rb)
        row = [f"{thr:.2f}", f"{1 - kb / max(nb, 1):.3f}"]
        for kind, sets_ in attacks.items():
            k, n = rate(run(sets_, st))
            row.append(f"{k / max(n, 1):.3f}")
        out("  " + " ".join(row))
    # per clip: fraction of 2.5 s windows (any start) that pass each challenge
    out("window pass rates (7.5 fps, 2.5 s, start every 0.2 s):")
    for name, c in clips.items():
        obs = c["obs"]
        row = []
        for ch in POOL:
            res = []
            for start in np.arange(0, obs[-1].t_ms, 200.0):
                b = burst(obs, start, 2, 19, rng)
                if b is not None:
                    res.append(assess(b, ch, settings).passed)
            row.append(f"{ch}={np.mean(res) if res else float('nan'):.2f} (n={len(res)})")
        out(f"  {name}: " + " ".join(row))
    print("\n".join(lines))
    return 0


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "all"
    if cmd == "attacks":
        build_photo_attacks()
    if cmd in ("extract", "all"):
        extract_videos()
        build_photo_attacks()
    if cmd in ("evaluate", "all"):
        return evaluate()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
