"""The five-landmark liveness study (superseded) - kept as the library of the data helpers.

The decision it evaluated (canonical nose parallax of MTCNN's five points) was replaced by the
dense-landmark 3-D check: ``benchmarks/liveness_data.py`` builds the data (reusing the decoder,
detector and paper renderer below) and ``benchmarks/liveness_rigidity_eval.py`` judges it with the
product's own decision code. ``evaluate`` here no longer runs (it would model the old decision).

Original description:

Usage::

    .venv/bin/python benchmarks/liveness_eval.py            # extract (cached) + evaluate + write docs
    .venv/bin/python benchmarks/liveness_eval.py extract    # only landmark extraction
    .venv/bin/python benchmarks/liveness_eval.py evaluate   # only evaluation from the cache

Landmarks are extracted once with the face engine's detector (idp.face.detector.FaceDetector:
MTCNN on a copy downscaled to 320 px, exactly as at sign-in)
and cached as JSON + .npy under /tmp/liveness_cache (override with LIVENESS_CACHE). Nothing
here writes frames or data into the repository; only docs/liveness.md and docs/img/liveness-*.png.

Sets (ISO/IEC 30107-3 terms):

* bona fide: bursts cut from the 12 real talking-head clips as the product films them (150 ms, up to
  4.5 s, accepted at the first passing prefix), starting frontal before a visible turn, each
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
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    n = ow * oh * 3
    i = 0
    try:
        while True:
            buf = proc.stdout.read(n)
            if len(buf) < n:
                break
            yield i * 1000.0 / fps, np.frombuffer(buf, np.uint8).reshape(oh, ow, 3)
            i += 1
    finally:
        proc.kill()
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
STATIC_PEOPLE = 25  # static attacks are trivially caught; spend the detector time on moving photos
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
        if k < STATIC_PEOPLE:
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
        events += [(name, tk, dk) for tk, dk in excursions(t, d, np.nan_to_num(d, nan=-1) >= GT_TURN)]
    return sorted(events, key=lambda e: e[1]), float(neutral)


def excursions(t, d, above, min_frames: int = GT_MIN_FRAMES) -> list[tuple[float, float]]:
    """(time, value) at the peak of ``d`` in every run of ``above`` lasting at least ``min_frames`` frames."""
    out, i = [], 0
    while i < len(d):
        if above[i]:
            j = i
            while j < len(d) and above[j]:
                j += 1
            if j - i >= min_frames:
                k = i + int(np.nanargmax(d[i:j]))
                out.append((float(t[k]), float(d[k])))
            i = j
        else:
            i += 1
    return out


def burst(obs, start_ms: float, step: int, n: int, rng):
    """Frames of a clip from ``start_ms``, every ``step``-th frame (15 fps source), timestamps jittered."""
    import dataclasses

    i0 = int(np.searchsorted([o.t_ms for o in obs], start_ms))
    idx = list(range(i0, len(obs), step))[:n]
    if len(idx) < n:
        return None
    return [dataclasses.replace(obs[i], t_ms=obs[i].t_ms - obs[i0].t_ms + float(rng.normal(0, 8))) for i in idx]


# --- the product's capture protocol (idp/faceweb/liveness.py + static/js/face-capture.js) ---------
# The page films a frame every INTERVAL_MS for up to WINDOW_MS and stops as soon as a frame answer says
# the burst so far passes (with at least the sign-in's frames_needed good frames); /finish then runs
# assess on those frames. So a presentation is accepted iff some *prefix* of its burst passes.
PRODUCT_INTERVAL_MS = 150  # idp.faceweb.liveness.INTERVAL_MS
PRODUCT_WINDOW_MS = 4500  # idp.faceweb.liveness.WINDOW_MS
PRODUCT_NEEDED = 5  # idp.config.Config.face_verify_frames (sign-in)
BF_STEADY_MS = 300  # a bona fide burst starts frontal and stays so for this long (the user reads the instruction)
BF_LEAD_MS = (500, 2500)  # ... this long before the turn's peak
CLIP_STEP_MS = 400.0  # start spacing of the per-clip pass rates (browser-test fixtures)


def product_burst(obs, start_ms: float, rng, interval=PRODUCT_INTERVAL_MS, window=PRODUCT_WINDOW_MS):
    """Frames of a clip filmed every ``interval`` ms from ``start_ms`` for up to ``window`` ms (nearest
    15 fps frame to each tick), timestamps jittered by 8 ms; None if the clip ends before 2 s."""
    import dataclasses

    t = np.array([o.t_ms for o in obs])
    out = []
    for k in range(int(window // interval) + 1):
        tick = start_ms + k * interval
        i = int(np.argmin(np.abs(t - tick)))
        if abs(t[i] - tick) > 40:
            break
        out.append(dataclasses.replace(obs[i], t_ms=k * interval + float(rng.normal(0, 8))))
    return out if len(out) * interval >= 2000 else None


def decide(obs, ch, settings, needed=PRODUCT_NEEDED):
    """The product's decision on a burst: the result at the first prefix (>= ``needed`` face frames)
    that passes, else the result on the whole burst. Also returns the per-prefix trace
    [(non-challenge checks ok, requested-turn score)] used to re-decide at other yaw thresholds."""
    from idp.liveness import assess

    trace, first = [], None
    r = None
    faces = 0
    for m in range(1, len(obs) + 1):
        faces += obs[m - 1].has_face
        if faces < needed and m < len(obs):
            continue
        r = assess(obs[:m], ch, settings)
        trace.append((not [x for x in r.reasons if not x.startswith("challenge_")] and faces >= needed,
                      r.scores.get(f"{ch}_score", 0.0)))
        if r.passed and faces >= needed and first is None:
            first = r
            break
    return (first or r), trace


def build_product_sets(rng):
    """Like :func:`build_sets`, with the product's capture protocol: bona fide bursts start at a
    frontal, steady moment 0.5-2.5 s before a turn's peak and are filmed every 150 ms for up to 4.5 s;
    replay windows are the same 4.5 s bursts started every 0.5 s; the synthetic photo sequences
    (16 frames at 6.4 fps, ~156 ms apart) are used as rendered."""
    bona, attacks = [], {"static photo": [], "moving photo": [], "replay (challenge not performed)": []}
    clips = {}
    for path in sorted((CACHE / "videos").glob("*.json")):
        meta, obs = load_sequence(path)
        events, neutral = ground_truth_events(obs)
        clips[path.stem] = dict(obs=obs, events=events, neutral=neutral)
        performed = {e[0] for e in events}
        _, us = trajectory(obs)
        t = np.array([o.t_ms for o in obs])
        dev = np.abs(np.nan_to_num(us - neutral, nan=1.0))
        steady = np.array([bool(np.all(dev[(t >= ti) & (t <= ti + BF_STEADY_MS)] < GT_FRONTAL)) for ti in t])
        for ch, t_peak, _ in events:
            cand = np.flatnonzero((t >= t_peak - BF_LEAD_MS[1]) & (t <= t_peak - BF_LEAD_MS[0]) & steady)
            for i in sorted(set(cand[np.linspace(0, len(cand) - 1, 3).round().astype(int)])) if len(cand) else []:
                b = product_burst(obs, t[i], rng)
                if b is not None:
                    bona.append((path.stem, ch, b, dict(t_peak=t_peak, start=t[i])))
        for start in np.arange(0, obs[-1].t_ms, 500.0):
            b = product_burst(obs, start, rng)
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


def run_product(sets, settings):
    """(label, challenge, decided result, meta, per-prefix trace) per presentation (see :func:`decide`)."""
    out = []
    for label, ch, obs, m in sets:
        r, trace = decide(obs, ch, settings)
        out.append((label, ch, r, m, trace))
    return out


def rate(results):
    n = len(results)
    k = sum(1 for r in results if r[2].passed)
    return k, n


def passes_at(trace, t):
    """Would the product accept this presentation with yaw_threshold ``t``? (some prefix passes)"""
    return any(ok and score >= t for ok, score in trace)


def evaluate(write_doc: bool = True) -> int:
    import collections

    from idp.liveness import LivenessSettings

    rng = np.random.default_rng(5)
    settings = LivenessSettings()
    thr = settings.yaw_threshold
    bona, attacks, clips = build_product_sets(rng)
    res_b = run_product(bona, settings)
    res_a = {k: run_product(v, settings) for k, v in attacks.items()}
    first = lambda r: r.reasons[0] if r.reasons else "passed"  # noqa: E731

    md = []
    o = md.append
    kb, nb = rate(res_b)
    events = [(n, e) for n, c in clips.items() for e in c["events"]]
    bf_events = {(lbl, m["t_peak"]) for lbl, _, _, m, _ in res_b}
    o("| set | presentations | accepted | rate |")
    o("|---|---|---|---|")
    o(f"| bona fide (head turns in the real clips) | {nb} bursts from {len(bf_events)} turns in "
      f"{len({e[0] for e in bf_events})} clips | {kb} | **BPCER {1 - kb / nb:.1%}** ({nb - kb}/{nb}) |")
    for kind, res in res_a.items():
        k, n = rate(res)
        seqs = len({(lbl, id(obs)) for lbl, _, obs, _ in attacks[kind]})
        o(f"| attack: {kind} | {n} (burst, challenge) pairs from {seqs} bursts | {k} | **APCER {k / n:.1%}** ({k}/{n}) |")
    table_main = "\n".join(md)

    md = []
    o = md.append
    o("| moving-photo motion | pairs | accepted | APCER |")
    o("|---|---|---|---|")
    sub = collections.defaultdict(list)
    for r in res_a["moving photo"]:
        sub[r[0]].append(r)
    for kind, res in sorted(sub.items()):
        k, n = rate(res)
        o(f"| {kind} | {n} | {k} | {k / n:.1%} |")
    table_sub = "\n".join(md)

    md = []
    o = md.append
    cols = ["passed", "static_feed", "planar_motion", "face_discontinuity", "challenge_wrong_direction", "challenge_not_performed"]
    o("| set | " + " | ".join(cols + ["other"]) + " |")
    o("|---" * 8 + "|")
    for kind, res in [("bona fide", res_b)] + list(res_a.items()):
        c = collections.Counter(first(r[2]) for r in res)
        o(f"| {kind} | " + " | ".join(str(c.get(x, 0)) for x in cols) + f" | {sum(v for x, v in c.items() if x not in cols)} |")
    table_reasons = "\n".join(md)

    md = []
    o = md.append
    o("| yaw_threshold | BPCER | " + " | ".join(f"APCER {k}" for k in res_a) + " | APCER tilt_yaw | APCER bend_yaw |")
    o("|---" * (4 + len(res_a)) + "|")
    for t in (0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.14, 0.16):
        row = [np.mean([not passes_at(r[4], t) for r in res_b])]
        row += [np.mean([passes_at(r[4], t) for r in res]) for res in res_a.values()]
        row += [np.mean([passes_at(r[4], t) for r in sub[k]]) for k in ("tilt_yaw", "bend_yaw")]
        mark = " (default)" if abs(t - thr) < 1e-9 else ""
        o(f"| {t:.2f}{mark} | " + " | ".join(f"{v:.1%}" for v in row) + " |")
    table_sweep = "\n".join(md)

    # bona fide BPCER by turn size
    md = []
    o = md.append
    o("| turn size (peak \\|u - median\\|, 15 fps) | bursts | BPCER |")
    o("|---|---|---|")
    size = {(n, e[1]): e[2] for n, e in events}
    for lo, hi in ((0.10, 0.15), (0.15, 0.20), (0.20, 1.0)):
        sel = [r for r in res_b if lo <= size[(r[0], r[3]["t_peak"])] < hi]
        if sel:
            k, n = rate(sel)
            o(f"| {lo:.2f}-{hi:.2f} | {n} | {1 - k / n:.1%} ({n - k}/{n}) |")
    table_size = "\n".join(md)

    # the previous protocol (fixed 2.5 s windows at 7.5 / 5 fps, whole-burst decision), same data
    leg_b, leg_a, _ = build_sets(np.random.default_rng(5))
    lres_b = run(leg_b, settings)
    lres_a = {k: run(v, settings) for k, v in leg_a.items()}
    lsub = collections.defaultdict(list)
    for r in lres_a["moving photo"]:
        lsub[r[0]].append(r)
    md = []
    o = md.append
    o("| protocol | BPCER | APCER static photo | APCER moving photo | APCER tilt_yaw | APCER bend_yaw | APCER replay |")
    o("|---|---|---|---|---|---|---|")
    o("| previous, as committed (99 of 155 photo sequences) | 48.0% (24/50) | 0.0% (0/50) | 3.4% (5/148) | 10.0% (3/30) | 7.1% (2/28) | 1.4% (4/295) |")

    def fmt(res, bona=False):
        k, n = rate(res)
        return f"{(1 - k / n) if bona else k / n:.1%} ({(n - k) if bona else k}/{n})"
    o(f"| previous, all {sum(1 for _ in (CACHE / 'attacks').glob('*.json'))} photo sequences | {fmt(lres_b, True)} | "
      + " | ".join(fmt(x) for x in (lres_a["static photo"], lres_a["moving photo"], lsub["tilt_yaw"], lsub["bend_yaw"],
                                     lres_a["replay (challenge not performed)"])) + " |")
    o(f"| **product protocol (this document)** | {fmt(res_b, True)} | "
      + " | ".join(fmt(x) for x in (res_a["static photo"], res_a["moving photo"], sub["tilt_yaw"], sub["bend_yaw"],
                                     res_a["replay (challenge not performed)"])) + " |")
    table_protocol = "\n".join(md)

    # per clip: turns and the fraction of product bursts (any start) that pass each challenge
    md = []
    o = md.append
    o("| clip | visible turns (time s: direction, size) | bursts | pass turn_left | pass turn_right |")
    o("|---|---|---|---|---|")
    for name, c in clips.items():
        obs = c["obs"]
        rates = {}
        n_w = 0
        for ch in POOL:
            res = []
            for start in np.arange(0, obs[-1].t_ms, CLIP_STEP_MS):
                b = product_burst(obs, start, rng)
                if b is not None:
                    res.append(decide(b, ch, settings)[0].passed)
            rates[ch] = float(np.mean(res)) if res else float("nan")
            n_w = len(res)
        ev = ", ".join(f"{tp / 1000:.1f}: {'L' if ch == 'turn_left' else 'R'} {d:.2f}" for ch, tp, d in c["events"]) or "none"
        o(f"| {name} | {ev} | {n_w} | {rates['turn_left']:.0%} | {rates['turn_right']:.0%} |")
    table_clips = "\n".join(md)

    fstudy = fingerprint_study(rng)
    md = []
    o = md.append
    o("| pair | pairs | pHash distance (min / median / max of 64 bits) | fingerprints_match |")
    o("|---|---|---|---|")
    for k, v in fstudy.items():
        d = np.array([x[0] for x in v])
        o(f"| {k} | {len(v)} | {d.min()} / {int(np.median(d))} / {d.max()} | {sum(x[1] for x in v)}/{len(v)} |")
    table_fp = "\n".join(md)

    print(table_main, table_sub, table_reasons, table_sweep, table_size, table_protocol, table_clips, table_fp, sep="\n\n")
    if write_doc:
        plots(clips, res_b, res_a, thr)
        n_seq = collections.Counter(json.loads(p.read_text())["kind"] for p in (CACHE / "attacks").glob("*.json"))
        DOC.write_text(DOC_TEMPLATE.format(
            table_main=table_main, table_sub=table_sub, table_reasons=table_reasons, table_sweep=table_sweep,
            table_size=table_size, table_clips=table_clips, table_fp=table_fp, table_protocol=table_protocol, thr=thr,
            settings="\n".join(f"{k} = {v!r}" for k, v in settings.as_dict().items()),
            gt_turn=GT_TURN, gt_frontal=GT_FRONTAL,
            n_seq=", ".join(f"{k} {v}" for k, v in sorted(n_seq.items())), n_static=n_seq.get("static", 0),
            n_moving=sum(v for k, v in n_seq.items() if k != "static"),
        ))
        print(f"wrote {DOC}")
    return 0


def fingerprint_study(rng):
    """pHash distances: same frame re-encoded (should match) vs other frames (should not)."""
    import io

    from PIL import Image

    from idp.liveness import frame_fingerprint, fingerprints_match, phash_distance

    same, later, other = [], [], []
    per_clip = {}
    for path in sorted(VIDEO_DIR.glob("*.mp4")):
        fps_, frames = [], []
        for t_ms, rgb in decode_video(path, fps=2):
            frames.append(rgb)
            if len(frames) >= 8:
                break
        for rgb in frames:
            buf = io.BytesIO()
            Image.fromarray(rgb).resize((rgb.shape[1] * 3 // 4, rgb.shape[0] * 3 // 4)).save(buf, "JPEG", quality=70)
            re = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            a, b = frame_fingerprint(rgb), frame_fingerprint(re)
            same.append((phash_distance(a, b), fingerprints_match(a, b)))
            fps_.append(a)
        for i in range(len(fps_)):
            for j in range(i + 2, len(fps_)):  # >= 1 s apart
                later.append((phash_distance(fps_[i], fps_[j]), fingerprints_match(fps_[i], fps_[j])))
        per_clip[path.stem] = fps_
    names = list(per_clip)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for x in per_clip[a][:3]:
                for y in per_clip[b][:3]:
                    other.append((phash_distance(x, y), fingerprints_match(x, y)))
    return {"re-encoded (JPEG q70, 75% size)": same, "same clip, >= 1 s apart": later, "different clips": other}


def plots(clips, res_b, res_a, thr):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    names = list(clips)
    fig, axes = plt.subplots(4, 3, figsize=(12, 9), sharey=True)
    for ax, name in zip(axes.flat, names):
        c = clips[name]
        t = np.array([o.t_ms for o in c["obs"]]) / 1000
        u, us = trajectory(c["obs"])
        ax.plot(t, u - c["neutral"], lw=0.5, color="0.6")
        ax.plot(t, us - c["neutral"], lw=1.2)
        for y in (GT_TURN, -GT_TURN):
            ax.axhline(y, ls=":", color="k", lw=0.8)
        for ch, tp, _ in c["events"]:
            ax.plot(tp / 1000, 0.3 if ch == "turn_left" else -0.3, "v" if ch == "turn_left" else "^", color="r")
        ax.set_title(name, fontsize=9)
        ax.set_ylim(-0.4, 0.4)
    fig.supxlabel("time (s)")
    fig.supylabel("canonical nose u - clip median (+ = subject's left)")
    fig.tight_layout()
    fig.savefig(IMG / "liveness-trajectories.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.linspace(-0.05, 0.45, 51)
    ax.hist([max((x[1] for x in r[4]), default=0.0) for r in res_b], bins, alpha=0.6, label="bona fide", density=True)
    for kind in ("moving photo", "replay (challenge not performed)"):
        ax.hist([max((x[1] for x in r[4]), default=0.0) for r in res_a[kind]], bins, alpha=0.5, label=kind, density=True)
    ax.axvline(thr, color="k", ls="--", label=f"yaw_threshold={thr}")
    ax.set_xlabel("requested-turn score (canonical nose displacement, max over the burst's prefixes)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "liveness-scores.png", dpi=80)
    plt.close(fig)


DOC_TEMPLATE = """# Liveness (presentation-attack detection)

*Generated by `benchmarks/liveness_eval.py` (issue 5). Figures below are measured, not targets; re-run
the script to refresh them. Terms follow ISO/IEC 30107-3: **APCER** = proportion of attack
presentations wrongly accepted (per attack type), **BPCER** = proportion of bona fide presentations
wrongly rejected.*

## What the sign-in does

1. The server picks an unpredictable challenge per capture session: `pick_challenge()` draws from
   `LivenessSettings.allowed_challenges` = **turn_left, turn_right** with `secrets.SystemRandom`;
   the page shows `CHALLENGE_INSTRUCTIONS[challenge]`.
2. The browser sends a burst of ~10-20 JPEG frames at ~5-8 fps over 2-4 s. The web layer runs the
   face engine on each frame, builds `observation_from_analysis(analysis, t_ms, w, h, image_rgb)`
   and calls `assess(observations, challenge) -> LivenessResult(passed, reasons, scores)`.
   `REASON_MESSAGES` / `reason_message(reason, challenge)` give the text to show.
3. Identity is checked by the face engine on the same frames (web layer).
4. Replay: the web layer stores `frame_fingerprint(frame)` for every accepted frame and rejects a
   burst containing a frame for which `fingerprints_match(new, stored)` holds (reason
   `replayed_frame`); frames are also bound to the session nonce and their timestamps by the web
   layer, and `assess` rejects non-increasing timestamps, gaps and over-long bursts (`bad_timing`).

Package `idp/liveness/` is pure Python + numpy (no Flask, no database). All thresholds live in
`LivenessSettings`:

```
{settings}
```

## In the product

*(Hand-written; kept in the generator's template.)* Liveness runs in every webcam capture of the hosted
face pages, **at enrollment and at sign-in** (`idp/faceweb/liveness.py`, called from
`idp/faceweb/views.py`), unless `IDP_LIVENESS_ENABLED=false`. `IDP_LIVENESS_CHALLENGES` (comma-separated)
narrows the pool; empty = `turn_left, turn_right`.

* **What the user sees.** After "Start camera", the start of the capture session returns its challenge;
  the page shows the instruction (e.g. "Slowly turn your head to your left, then back to the camera.")
  above the preview in an `aria-live` element (`#challenge`), films a frame every 150 ms for up to
  4.5 s and uploads them one after the other as the server keeps up (capture time in `X-Frame-Time`).
  A frame answer carries `liveness` (passed, elapsed_ms, window_ms, ...) and `done: true` as soon as
  the burst passes the checks with enough good frames (or the window is over). A failure shows
  `reason_message(reason, challenge)` (e.g. "The picture did not move at all. Please use a live camera
  and follow the instruction.") and "Try again" (a new capture gets a new random challenge).
* **Per frame the server keeps** what `assess` needs and no picture: the face box and 5 landmarks,
  the frame size and its time in the burst (the browser's capture time, never more than 2 s ahead of
  the server's own receive times). The static-feed statistic is computed as frames arrive: only the
  first frame's 32x32 grey thumbnail is kept, until the capture finishes (removed with the
  embeddings; the capture TTL removes it otherwise). Frames whose pixels repeat an earlier frame of the
  same capture are not analysed again and count toward `static_feed` (from a quarter of the frames).
* **At /finish** `assess` runs on that capture's frames; only if it passes is identity checked (enroll /
  verify) on the **same** frames. A liveness failure at sign-in is a failed face attempt (it counts
  toward the delay and the lock); too few usable frames without attack evidence stays an incomplete
  attempt, as before. Audit entries (`face.enroll`, `face.verify`) carry `liveness_passed`,
  `liveness_reasons`, `liveness_challenge` (decision `liveness_failed` at sign-in) - never images.
* **Replay store.** Collection `liveness_frames` (migration 0005): the sha256 of the decoded pixels
  (the exact part of `frame_fingerprint`) of every frame a capture accepted, with its capture id,
  unique index, TTL 30 days. A frame already seen in *another* capture fails that capture at once
  (HTTP 409 `replayed_frame`, "These pictures were already used...", a failed attempt at sign-in).
  The perceptual-hash part is not used for rejection (it matches different frames of the same scene,
  see "Replay fingerprints" below), so a re-encoded copy of a captured frame is not caught by this
  store; it still has to pass the challenge.
* **Tests.** `tests/faceweb/test_liveness_web.py` (capture API, real engine, real d3 frames and still
  photos) and the browser tests `tests/browser/test_liveness*.py` (fake webcam; they pin the challenge
  the clip performs, since a file cannot follow a random instruction).

## How each check works

**Canonical nose position (the core measure).** The homography that maps the four outer
landmarks (eyes, mouth corners) onto the unit square is applied to the nose tip. Every view of a
*flat* picture - moved, rotated, scaled, tilted, seen in perspective - is a homography of the
picture, and homographies compose, so a flat picture's canonical nose never moves (up to landmark
noise). A real nose stands 2-3 cm in front of the eye/mouth plane, so turning the head moves the
canonical nose left/right (`u`), nodding moves it up/down (`v`). This is the parallax test asked for
in the issue, built into the challenge measure itself: *a planar object cannot perform a turn*.

* **Challenge (turn_left / turn_right).** `u` is median-filtered (3 frames; the ends copy the
  nearest full window so a single-frame landmark glitch cannot count), referenced to the pose at
  the start of the burst (`baseline_frames` = 2 of the filtered series, whose first values copy the
  first full window: in effect the median of the first 3 frames), and the requested direction must reach
  `yaw_threshold` = {thr} (about a 13 degree turn on the 3-D head model in `idp/liveness/synthetic.py`)
  within `challenge_window_ms`. Turning to the subject's left moves the nose to the image right in
  an unmirrored frame (`mirrored=True` flips this). Reaching the threshold the other way gives
  `challenge_wrong_direction`.
* **Planar motion.** If the eye/mouth quad changes shape (residual of the best similarity
  transform >= `planar_min_distortion`: a tilted or perspective-warped picture) while the canonical
  nose stays put (parallax < max(`planar_max_parallax`, `planar_parallax_ratio` x distortion)),
  the burst is a flat picture: `planar_motion`.
* **Static feed.** Mean absolute difference of 32x32 grey thumbnails against the first frame below
  `static_thumb_diff` (without thumbnails: all landmarks within `static_landmark_motion` x eye
  distance): `static_feed`.
* **Burst sanity.** Enough frames with a face (`too_few_frames`), not too many without
  (`face_lost`), timestamps strictly increasing, no gap over `max_gap_ms`, duration within
  [`min_duration_ms`, `max_duration_ms`] (`bad_timing`), no face jumping between frames
  (`face_discontinuity`, catches spliced feeds).
* **Replay fingerprints.** `frame_fingerprint` = `v1:<64-bit DCT perceptual hash of a 32x32 grey
  thumbnail>:<sha256 of the exact pixels>`; `fingerprints_match` = same sha256 or pHash Hamming
  distance <= 4.
* **look_up / look_down / move_closer** are implemented (canonical `v`; face-size growth) and unit
  tested on the 3-D model but **not in the default pool**: with only 5 landmarks the pitch measure
  also moves when the mouth opens (observed: d12 at 4.8 s, mouth wide open, `v` drops by 0.15 with
  no nod), so a talking replay could pass them; and a photo moved towards the camera grows exactly
  like a face, so move_closer proves nothing on its own.
* **Screen / print texture cues** (moire, specular, colour statistics) are **not** implemented: the
  synthesised attacks are digitally pasted photos with no print or screen artefacts and the shared
  data has only 2 real attack images, so there is no way to show such a cue "measurably helps".

## Data sets

* **Bona fide:** the 12 real talking-head clips (`video/liveportrait_driving/*.mp4`), decoded at
  15 fps and run through the face engine's detector (`idp.face.detector.FaceDetector`: MTCNN on a
  copy downscaled to 320 px, as at sign-in). A *visible head turn* is an excursion of the smoothed
  (5-frame median) canonical `u` beyond {gt_turn} of the clip's median for >= 0.2 s (checked by eye
  on contact sheets of the clips). For each turn, bursts start at up to 3 moments 0.5-2.5 s before
  the peak where the head is frontal (|u - median| < {gt_frontal}) **and stays frontal for the
  next 0.3 s** - the page shows the instruction when filming starts, so a user following it faces
  the camera while reading it. Each burst is filmed **as the product does** (see "Protocol" below):
  a frame every 150 ms (nearest 15 fps frame, timestamps jittered by 8 ms) for up to 4.5 s, and it
  is **accepted as soon as a prefix with >= 5 face frames passes** `assess` against the direction
  turned. Only 5 of the 12 clips contain visible turns, and they are small incidental turns, not
  the deliberate turn the page asks for.
* **Attack, static photo:** a colour-LFW photo (`lfw_color65_240px`, 3rd photo of the person),
  scaled to 280-360 px with a white print border, pasted into a 640x480 frame on a blurred random
  background, held still for 16 frames at 6.4 fps; per-frame sensor noise (sigma 2) and JPEG q85.
  Sequences: {n_static}.
* **Attack, moving photo:** the same kind of frame (1st and 2nd photo of each person) rendered as a
  sheet of paper in front of a pinhole camera over 2.5 s (16 frames at 6.4 fps): `affine`
  (translation +-40-100 px, in-plane rotation 10-30 degrees, scale +-10-25 %), `tilt_yaw` / `tilt_pitch`
  (paper turned 25-50 degrees about its vertical / horizontal axis and most of the way back - the
  attacker mimicking a head turn), `mixed` (all at once), `bend_yaw` (paper bent into a cylinder,
  edges 8-20 % of its width behind the centre, and turned 25-45 degrees). Sequences: {n_moving}.
* **Attack, replay:** a product burst (150 ms, up to 4.5 s, accepted at the first passing prefix)
  started every 0.5 s of each clip, assessed against each pool challenge the clip never performs
  (no visible turn in that direction anywhere in it).

The script builds 25 static and 130 moving sequences (cached under /tmp, reused on re-runs); all
155 are used here. The photo sequences (16 frames ~156 ms apart) are judged with the same
first-passing-prefix rule. All attack bursts are assessed against both pool challenges (turn_left,
turn_right), i.e. the attacker always gets to try the challenge his motion fits best. Sequences
built: {n_seq}.

### Protocol (changed; previous figures kept for comparison)

The previous version of this document cut fixed 2.5 s windows (7.5 fps x 19 frames and 5 fps x 13
frames) and judged each *whole* window; bona fide windows started at any frontal frame 0.4-2.0 s
before the peak. Inspecting the failing bona fide bursts showed that this, not the detector, drove
most of the 48 % BPCER:

* **Windows started mid-turn.** "Frontal" was tested on one frame only, so the last start
  candidate before a peak was often on the rising edge (e.g. d3 at 4.6 s: +0.04, +0.05, +0.11 ...;
  d12 at 1.27 s: +0.03, +0.09, +0.16 ...). The starting pose (median of the first 3 frames) was
  then already turned and the remaining excursion fell below `yaw_threshold`; with the return past
  the centre (or the next turn) in the window this shows as `challenge_wrong_direction` (13 of
  the 24 rejections, not all of them mid-turn starts). A user following
  the instruction starts facing the camera; the starts must now stay frontal for 0.3 s.
* **Whole-window decision.** The product stops filming as soon as the burst so far passes
  (`idp/faceweb/liveness.py`: `done` once `assess` passes with enough good frames), so motion
  *after* the turn cannot undo it. The old protocol judged the whole window: both rejections of
  the largest turn (d12 at 6.7 s, 0.23) were `face_discontinuity` from the fast return *after*
  the turn had already passed (the head moves ~1 face width in 0.13 s there) - this was the 25 %
  BPCER on turns >= 0.20.
* **Frame rate.** 5 fps bursts (200 ms) are slower than the product's 150 ms; the 3-frame median
  then needs the turn held for 0.4 s instead of 0.3 s, and per-frame jumps are larger.

Nothing in `idp/liveness/` was changed: the baseline (tried as the median of the first 3, 4 or 5
raw frames), the smoothing and the thresholds give the same or worse error rates on the new
protocol (see the sweep). The new protocol applies the same first-passing-prefix rule to the
attacks, which gives them *more* chances than before (any prefix of up to 4.5 s); the attack
figures below are measured under it.

{table_protocol}

## Results (default settings)

{table_main}

Moving photo by motion type:

{table_sub}

First (most telling) reason per presentation:

{table_reasons}

![score distributions](img/liveness-scores.png)

Bona fide rejections by turn size:

{table_size}

Trade-off of the one threshold that matters (product protocol; a presentation is accepted at a
threshold if some prefix passes every other check and reaches it):

{table_sweep}

### Targets

The targets were APCER <= 5 % per attack type and BPCER <= 5 %. **Met:** APCER for the static
photo, the moving photo (all motions together), the replay set, and every moving-photo sub-type but
one. **Not met:** `tilt_yaw` (paper turned like a head) is just above 5 % on its own (3 of 52);
`bend_yaw` (bent paper, real depth - see the limits) is below it on this set. **BPCER is far above
5 %.** All its rejections are threshold-level incidental turns (0.10-0.15): d12 at 1.9 s (a 0.12
turn measured from a starting pose that landmark noise puts ~0.03 towards the turn: score 0.08) and
three bursts of d9, whose "turns" are 1-2 frame wobbles of a talking head (+-0.1 within 0.3 s) that
the 3-frame median removes; they end as `challenge_wrong_direction` because the wobble also swings
the other way. The sweep justifies keeping `yaw_threshold` = 0.10: 0.09 rejects the same bona fide
bursts with more attacks accepted, 0.08 accepts one more bona fide burst but moving-photo APCER
goes to 8.1 % (`tilt_yaw` 13.5 %) and replay to 4.8 %, 0.11 rejects 6 of 21. The set is small (21
bursts, 8 turns, 4 clips) and made of incidental turns; no shared video shows a deliberate,
instructed turn, so the BPCER for users who follow the instruction is not measured.

## The challenge each clip performs (for browser tests)

Canonical nose trajectories (red markers: visible turns; dotted: +-{gt_turn}):

![trajectories](img/liveness-trajectories.png)

Fraction of product bursts (a frame every 150 ms for up to 4.5 s, accepted at the first passing
prefix) started every 0.4 s of the clip that pass each challenge with the default settings - i.e.
how likely a fake-webcam browser test passes when the burst starts at a random moment of the looping
clip:

{table_clips}

For browser tests, fix the challenge (test configuration) to the one with the highest rate for the
chosen clip and let the capture retry: **`d3` with `turn_left`** passes about 70 % of the bursts
(it turns left at 5.5 s and 9.1 s, right at 0.6, 6.9 and 10.7 s), `d11` with `turn_left` about 60 %,
`d12` with `turn_left` about half. Clips with no visible turn (`d0`, `d10`, `d13`, `d18`, `d19`,
`d20`: 0 %; `d14`: 2 % for turn_right) are the "user did not perform the challenge" fixtures; `d9`
(the most webcam-like) only turns briefly near 10.5 s and passes 16-23 % of bursts, so it is a poor
fixture for either outcome.

## Replay fingerprints

Frames decoded at 2 fps (8 per clip); re-encoded = JPEG q70 at 75 % size:

{table_fp}

A re-encoded or rescaled copy of a frame always matches, and frames of different clips never do.
But **the 64-bit whole-frame pHash also matches about half of the pairs of genuinely different
frames of the same clip taken >= 1 s apart** (same person, same background, small motion): it
cannot tell "the same frame replayed" from "a new capture of the same scene". Consequences for the
web layer: (1) reject on the exact part (`fingerprints_match(a, b, max_distance=-1)` compares
sha256 only) - this catches byte-identical reuse of captured frames, which is what a replay of
intercepted uploads looks like; (2) treat a pHash-only match as a signal (log / count several
matching frames), not as a rejection on its own, otherwise returning users in the same room will be
refused. A finer hash (e.g. of the face crop) was not evaluated.

## Limits of the method

* **Bent paper:** a photo bent into a cylinder and turned has real depth, so its landmarks show
  parallax like a head (`bend_yaw` row). Five landmarks cannot tell a bent print from a face; a
  texture/depth model would be needed.
* **Video replay of the user performing the requested turn** passes the geometric checks by design
  (it is a real 3-D head). The defences are unpredictability (1 in 2 with the default pool; the
  attacker needs a recording of the right turn, started at the right time), the time window, and
  the fingerprints (exact frame reuse). A screen-replay detector is not part of this work.
* **Landmark noise:** MTCNN landmarks at 320 px detection scale jitter by a few pixels; on small
  faces this is 0.05-0.1 in `u` for single frames, which is why the measure is median-filtered and
  the threshold cannot go much lower (see the sweep).
* **Synthetic attacks** are rendered digitally (no print halftone, no screen moire, no hand
  tremor, no glare); real prints and screens add texture cues this method does not use and more
  landmark noise.
* **Small bona fide set:** few distinct turns in few clips; treat the BPCER as indicative.
"""


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "all"
    if cmd == "attacks":
        build_photo_attacks()
    if cmd in ("extract", "all"):
        extract_videos()
        build_photo_attacks()
    if cmd in ("evaluate", "all"):
        print("superseded: run benchmarks/liveness_data.py, then benchmarks/liveness_rigidity_eval.py", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
