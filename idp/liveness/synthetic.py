"""Synthetic landmark bursts: a 3-D head model and a flat picture, seen by a pinhole camera.

For unit tests here and in the web layer (a burst that passes a given challenge without a
camera or the face models). Not used in production code paths.

Both the five detector landmarks and the 468 dense landmarks are synthesised. The dense head is
``models/face_shape_468.npy``: the median of the Face Mesh model's output on 10 frontal frames of
the shared clip d18, centred and scaled to millimetres (64 mm between the eye centres). The dense
output for a flat picture keeps the depth of the face printed on it (the model sees a face), while
its image positions follow the picture's motion.
"""
from __future__ import annotations

import math

import numpy as np

from .core import FrameObservation
from .geometry import LANDMARK_NAMES

#: Landmarks of an average head in mm: x to the image right (subject's left), y down, z towards
#: the camera. The nose tip stands ~25 mm in front of the eyes; mouth corners a little.
HEAD_MM = {
    "left_eye": (-32.0, 0.0, 0.0),
    "right_eye": (32.0, 0.0, 0.0),
    "nose": (0.0, 38.0, 25.0),
    "mouth_left": (-25.0, 70.0, 6.0),
    "mouth_right": (25.0, 70.0, 6.0),
}
PIVOT_Z = -95.0  # head rotates about a vertical axis ~95 mm behind the eyes (the neck)
_SHAPE = None


def face_shape() -> np.ndarray:
    """(468, 3) mm, x right, y down, z towards the camera (the dense head model)."""
    global _SHAPE
    if _SHAPE is None:
        from pathlib import Path
        m = np.load(Path(__file__).resolve().parent / "models" / "face_shape_468.npy").astype(np.float64)
        # MediaPipe's z grows away from the camera; here z grows towards it. Eyes at y=0 like HEAD_MM.
        eyes_y = (m[33, 1] + m[133, 1] + m[362, 1] + m[263, 1]) / 4
        _SHAPE = np.c_[m[:, 0], m[:, 1] - eyes_y, -m[:, 2] + m[1, 2] + 25.0]
    return _SHAPE


def _dense(p3: np.ndarray, depth_mm: np.ndarray, distance_mm: float, offset_px, frame) -> np.ndarray:
    """Frame-pixel dense landmarks (model convention: z scaled like x, smaller = nearer)."""
    p2 = project(p3, distance_mm, offset_px=offset_px, frame=frame)
    return np.c_[p2, -depth_mm * 600.0 / distance_mm].astype(np.float32)


def _rot(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """Rotation: yaw > 0 turns the face towards +x (subject's left in an unmirrored frame),
    pitch > 0 tilts the face up (the nose moves towards -y)."""
    a, b, c = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def project(points_mm: np.ndarray, distance_mm: float, offset_px=(0.0, 0.0), f_px: float = 600.0,
            frame=(640, 480)) -> np.ndarray:
    """Pinhole projection of (N,3) points (z towards camera) placed ``distance_mm`` in front of it."""
    z = distance_mm - points_mm[:, 2]
    x = f_px * points_mm[:, 0] / z + frame[0] / 2 + offset_px[0]
    y = f_px * points_mm[:, 1] / z + frame[1] / 2 - 40 + offset_px[1]
    return np.c_[x, y]


def _observation(p2: np.ndarray, t_ms: float, frame, thumb) -> FrameObservation:
    lm = {n: (float(p2[i, 0]), float(p2[i, 1])) for i, n in enumerate(LANDMARK_NAMES)}
    xs, ys = p2[:, 0], p2[:, 1]
    iod = abs(p2[1, 0] - p2[0, 0]) + 1e-6
    w = max(xs.max() - xs.min(), iod) * 1.9
    h = (ys.max() - ys.min()) * 2.0
    cx, cy = xs.mean(), ys.mean() - 0.05 * h
    return FrameObservation(t_ms=t_ms, box=(cx - w / 2, cy - h / 2, w, h), landmarks=lm,
                            frame_w=frame[0], frame_h=frame[1], thumb=thumb)


def _thumb(rng, base: np.ndarray, p2: np.ndarray, frame, noise: float) -> np.ndarray:
    """A fake 32x32 thumbnail: static background plus a bright blob where the face is."""
    yy, xx = np.mgrid[0:32, 0:32]
    cx, cy = p2[:, 0].mean() * 32 / frame[0], p2[:, 1].mean() * 32 / frame[1]
    r = max(abs(p2[1, 0] - p2[0, 0]) * 32 / frame[0], 1.0)
    blob = 60.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    img = base + blob + rng.normal(0, noise, base.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def head_burst(yaw=None, pitch=None, distance=None, n: int = 15, fps: float = 6.0, noise_px: float = 0.8,
               seed: int = 0, t0_ms: float = 0.0, frame=(640, 480), thumb_noise: float = 2.0,
               mirrored: bool = False) -> list[FrameObservation]:
    """Burst of a real (3-D) head. ``yaw``/``pitch`` (degrees) and ``distance`` (mm) are callables
    of s in [0, 1] (the burst's progress) or constants; defaults: frontal, still, 500 mm."""
    rng = np.random.default_rng(seed)
    fy = yaw if callable(yaw) else (lambda s, v=yaw or 0.0: v)
    fp = pitch if callable(pitch) else (lambda s, v=pitch or 0.0: v)
    fd = distance if callable(distance) else (lambda s, v=distance or 500.0: v)
    pts = np.array([HEAD_MM[k] for k in LANDMARK_NAMES])
    base = rng.uniform(40, 200, (32, 32))
    out = []
    for i in range(n):
        s = i / max(n - 1, 1)
        r = _rot(fy(s), fp(s))
        p3 = (pts - [0, 0, PIVOT_Z]) @ r.T + [0, 0, PIVOT_Z]
        off = rng.normal(0, 1.5, 2)
        p2 = project(p3, fd(s), offset_px=off, frame=frame)
        d3 = (face_shape() - [0, 0, PIVOT_Z]) @ r.T + [0, 0, PIVOT_Z]
        dense = _dense(d3, d3[:, 2], fd(s), off, frame)
        if mirrored:
            p2[:, 0] = frame[0] - p2[:, 0]
            p2 = p2[[1, 0, 2, 4, 3]]  # image-left/right labels swap in a mirror image
            dense[:, 0] = frame[0] - dense[:, 0]
        p2 = p2 + rng.normal(0, noise_px, p2.shape)
        dense[:, :2] += rng.normal(0, noise_px * 0.5, (len(dense), 2))
        o = _observation(p2, t0_ms + i * 1000.0 / fps, frame, _thumb(rng, base, p2, frame, thumb_noise))
        o.dense = dense
        out.append(o)
    return out


def photo_burst(yaw=None, pitch=None, roll=None, distance=None, shift=None, bend: float = 0.0, n: int = 15,
                fps: float = 6.0, noise_px: float = 0.8, seed: int = 0, t0_ms: float = 0.0, frame=(640, 480),
                thumb_noise: float = 2.0, head_yaw: float = 0.0,
                depth_turns: float = 0.0) -> list[FrameObservation]:
    """Burst of a flat picture of a face (printed photo or screen) moved in front of the camera.

    The picture shows a face (frontal, or turned by ``head_yaw``); the picture itself is tilted by
    ``yaw``/``pitch``/``roll`` (degrees), moved by ``shift`` (px, callable of s -> (dx, dy)) and put
    at ``distance`` mm. ``bend`` > 0 curves the paper around a vertical axis (z = -bend * x^2, mm).
    """
    rng = np.random.default_rng(seed)
    const = lambda v, d: v if callable(v) else (lambda s, v=(v if v is not None else d): v)  # noqa: E731
    fy, fp, fr, fd = const(yaw, 0.0), const(pitch, 0.0), const(roll, 0.0), const(distance, 500.0)
    fs = shift if callable(shift) else (lambda s, v=(shift or (0.0, 0.0)): v)
    # the printed face: its landmarks flattened onto the paper (z=0) as a camera saw them
    head = np.array([HEAD_MM[k] for k in LANDMARK_NAMES])
    head = (head - [0, 0, PIVOT_Z]) @ _rot(head_yaw, 0).T + [0, 0, PIVOT_Z]
    flat = np.c_[head[:, :2] * 1.0, np.zeros(len(head))]
    flat[:, 2] = -bend * flat[:, 0] ** 2
    shape = (face_shape() - [0, 0, PIVOT_Z]) @ _rot(head_yaw, 0).T + [0, 0, PIVOT_Z]
    dflat = np.c_[shape[:, :2], -bend * shape[:, 0] ** 2]
    base = rng.uniform(40, 200, (32, 32))
    out = []
    for i in range(n):
        s = i / max(n - 1, 1)
        p3 = flat @ _rot(fy(s), fp(s), fr(s)).T
        off = np.asarray(fs(s), float)
        p2 = project(p3, fd(s), offset_px=off, frame=frame)
        p2 = p2 + rng.normal(0, noise_px, p2.shape)
        # the model sees the printed face: image positions follow the paper, depth is the face's own
        rot = _rot(fy(s), fp(s), fr(s))
        depth = (shape @ _rot(depth_turns * fy(s), depth_turns * fp(s), 0.0).T)[:, 2]
        dense = _dense(dflat @ rot.T, depth, fd(s), off, frame)
        dense[:, :2] += rng.normal(0, noise_px * 0.5, (len(dense), 2))
        o = _observation(p2, t0_ms + i * 1000.0 / fps, frame, _thumb(rng, base, p2, frame, thumb_noise))
        o.dense = dense
        out.append(o)
    return out


def ramp(peak: float, start: float = 0.2, top: float = 0.55, back: float | None = 0.9):
    """Movement profile: still until ``start``, reaches ``peak`` at ``top``, back to 0 at ``back``."""
    def f(s: float) -> float:
        if s <= start:
            return 0.0
        if s <= top:
            return peak * (s - start) / (top - start)
        if back is None:
            return peak
        if s <= back:
            return peak * (back - s) / (back - top)
        return 0.0
    return f
