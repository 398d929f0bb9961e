"""3-D evidence from dense landmarks (pure numpy): is the motion between two views planar, and
how far did the head turn?

**Planar or not.** Every view of a flat object (a print, a screen, a photo held at any angle, seen in
perspective) is a homography of any other view of it: 8 parameters map all its points from one frame
to the next. A head is not flat: when it turns, the nose, the cheeks and the face outline move by
different amounts depending on their depth (parallax), which no homography reproduces. With 468
landmarks per frame, fitting one homography between a frontal frame and a turned frame leaves a
residual of the landmark noise for a flat object and a residual growing with the turn for a head.

The decision compares two models with the same number of parameters (so neither is favoured by
flexibility): the homography of the 2-D points (plane, 8 parameters) and an affine camera applied to
the reference frame's 3-D landmarks (rigid 3-D shape, 2x4 = 8 parameters). Their residual ratio
``planar / rigid`` is ~1 or below for a flat object (the homography is exact; the 3-D model has to
explain a motion the hallucinated depth does not show) and grows above 1 for a head turning (the
3-D model explains the parallax, the plane cannot). See docs/liveness.md for the measured
distributions and the thresholds.

**Yaw.** The model's 3-D landmarks of the two frames are aligned by the best rotation (Kabsch);
its angle about the vertical axis is the head turn. A flat print also shows "yaw" to the model, so
the turn's extent says nothing about liveness on its own: only the planarity test does.
"""
from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np

# Landmarks used for the fits: all but the face outline (silhouette points slide over the cheek as
# the head turns, so they are not fixed points of the face) - MediaPipe Face Mesh's FACE_OVAL ring.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
INNER = np.setdiff1d(np.arange(468), np.array(FACE_OVAL))


def _upper_face() -> np.ndarray:
    """INNER landmarks at or above the nose tip (index 1) on the frontal head model
    (models/face_shape_468.npy): brows, eyes, nose, forehead, upper cheeks - the rigid part of a face.
    The mouth and jaw move when the person talks, which would look like a non-rigid shape."""
    from pathlib import Path
    m = np.load(Path(__file__).resolve().parent / "models" / "face_shape_468.npy").astype(np.float64)
    return np.array([i for i in INNER if m[i, 1] <= m[1, 1]])


UPPER = _upper_face()


#: Results kept by :func:`memoised` per function (a capture's decision after each frame compares every
#: earlier frame again with the same starting pose; ~30 frames a capture, several captures at once).
MEMO_SIZE = 2048


class _Unkeyable(Exception):
    """An argument the memo cannot key exactly: the call is computed, not memoised."""


def _key(v):
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return (a.dtype.str, a.shape, hashlib.blake2b(a.tobytes(), digest_size=16).digest())
    if isinstance(v, (bool, np.bool_)):
        return ("b", bool(v))
    if isinstance(v, (int, np.integer)):
        return ("i", int(v))
    if isinstance(v, (float, np.floating)):
        return ("f", float(v).hex())  # exact, and -0.0 apart from 0.0
    if v is None or isinstance(v, str):
        return ("s", v)
    raise _Unkeyable


def memoised(fn):
    """``fn`` with its results kept for the same arguments (arrays compared by dtype, shape and a
    128-bit digest of their bytes), at most MEMO_SIZE of them (least recently used dropped first). The
    functions here are pure, so a kept result is exactly the one a new computation would give: the
    liveness decision, made again after each frame of a capture on all its frames, then computes only
    the new frame's comparison. Thread-safe; per process (nothing is shared or stored)."""
    cache: OrderedDict = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            k = (tuple(_key(a) for a in args), tuple(sorted((n, _key(v)) for n, v in kwargs.items())))
        except _Unkeyable:
            return fn(*args, **kwargs)
        with lock:
            if k in cache:
                cache.move_to_end(k)
                hit = cache[k]
                return dict(hit) if isinstance(hit, dict) else hit
        value = fn(*args, **kwargs)
        with lock:
            wrapper.computed += 1
            cache[k] = value
            while len(cache) > MEMO_SIZE:
                cache.popitem(last=False)
        return dict(value) if isinstance(value, dict) else value
    wrapper.cache, wrapper.computed = cache, 0  # computed: results computed (not taken from the cache)
    return wrapper


def _normaliser(p: np.ndarray) -> np.ndarray:
    """Hartley normalisation (centroid to 0, mean distance sqrt(2)) as a 3x3 matrix."""
    c = p.mean(0)
    s = math.sqrt(2) / max(float(np.sqrt(((p - c) ** 2).sum(1)).mean()), 1e-12)
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1.0]])


def fit_homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares (DLT on Hartley-normalised coordinates) homography mapping src (N, 2) to dst."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ts, td = _normaliser(src), _normaliser(dst)
    sp = src @ ts[:2, :2].T + ts[:2, 2]
    dp = dst @ td[:2, :2].T + td[:2, 2]
    n = len(sp)
    x, y, u, v = sp[:, 0], sp[:, 1], dp[:, 0], dp[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    a = np.empty((2 * n, 9))
    a[0::2] = np.c_[x, y, one, zero, zero, zero, -u * x, -u * y, -u]
    a[1::2] = np.c_[zero, zero, zero, x, y, one, -v * x, -v * y, -v]
    if len(a) < 9:  # 4 points: the reduced SVD would leave out the null vector sought
        a = np.vstack([a, np.zeros((9 - len(a), 9))])
    h = np.linalg.svd(a, full_matrices=False)[2][-1].reshape(3, 3)
    return np.linalg.inv(td) @ h @ ts


def _size(p: np.ndarray) -> float:
    """RMS distance of the points from their centroid (a face-size scale, pixels)."""
    return max(float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean())), 1e-9)


def planar_residual(src: np.ndarray, dst: np.ndarray) -> float:
    """RMS transfer error of the best homography src -> dst, relative to the face size in dst."""
    h = fit_homography(src, dst)
    q = np.c_[src, np.ones(len(src))] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        q = q[:, :2] / q[:, 2:3]
    if not np.all(np.isfinite(q)):
        return float("inf")
    return float(np.sqrt(((q - dst) ** 2).sum(1).mean())) / _size(dst)


def rigid_residual(src3: np.ndarray, dst: np.ndarray) -> float:
    """RMS error of the best affine camera (2x4) projecting the reference 3-D points src3 (N, 3) to
    dst (N, 2), relative to the face size in dst."""
    a = np.c_[src3 - src3.mean(0), np.ones(len(src3))]
    p, *_ = np.linalg.lstsq(a, dst, rcond=None)
    return float(np.sqrt(((a @ p - dst) ** 2).sum(1).mean())) / _size(dst)


def rotation(ref3: np.ndarray, cur3: np.ndarray) -> np.ndarray:
    """Best rotation R (Kabsch) with cur ~ s R ref + t for two (N, 3) point sets."""
    a = ref3 - ref3.mean(0)
    b = cur3 - cur3.mean(0)
    a = a / _size(a)
    b = b / _size(b)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return (u @ np.diag([1.0, 1.0, d]) @ vt).T


def shape_residual(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """RMS residual of the best similarity in 3-D (rotation, uniform scale, translation) from ref3 to
    cur3, relative to their size: ~0 when the model sees the same rigid face turned, large when the
    image foreshortens the face more than its 3-D turn explains (a flat picture turned far)."""
    a = ref3 - ref3.mean(0)
    b = cur3 - cur3.mean(0)
    a = a / _size(a)
    b = b / _size(b)
    r = rotation(ref3, cur3)
    return float(np.sqrt(((a @ r.T - b) ** 2).sum(1).mean()))


def yaw_deg(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """Turn about the vertical axis from ref to cur, degrees; > 0 = the face turned towards the
    image right (the nose tip moves right: the subject's left in an unmirrored camera frame)."""
    r = rotation(ref3, cur3)
    return -math.degrees(math.atan2(r[0, 2], r[2, 2]))


def pitch_deg(ref3: np.ndarray, cur3: np.ndarray) -> float:
    """Tilt about the horizontal image axis from ref to cur, degrees, from the same best rotation as
    :func:`yaw_deg`; > 0 = chin up (the face tilts back: the nose tip moves towards the image top), the
    same in a mirrored frame. Both are read from where the rotation takes the reference's depth axis
    (the direction the face looks): its horizontal deflection is the yaw, its vertical one the pitch."""
    r = rotation(ref3, cur3)
    return math.degrees(math.atan2(r[1, 2], r[2, 2]))


@memoised
def compare(ref3: np.ndarray, cur3: np.ndarray, idx: np.ndarray = INNER) -> dict:
    """Planarity and turn between a reference frame and another frame of the same face (both (468, 3)
    frame-pixel landmarks): ``planar`` / ``rigid`` residuals, their ``ratio``, ``yaw`` and ``pitch``
    (degrees, :func:`yaw_deg`, :func:`pitch_deg`), ``shape`` (:func:`shape_residual` of the upper face)."""
    r3, c3 = np.asarray(ref3, np.float64)[idx], np.asarray(cur3, np.float64)[idx]
    pr = planar_residual(r3[:, :2], c3[:, :2])
    rr = rigid_residual(r3, c3[:, :2])
    up = np.asarray(ref3, np.float64)[UPPER], np.asarray(cur3, np.float64)[UPPER]
    return {"planar": pr, "rigid": rr, "ratio": pr / max(rr, 1e-9), "yaw": yaw_deg(r3, c3),
            "pitch": pitch_deg(r3, c3), "shape": shape_residual(*up)}


@memoised
def predicted_planar_residual(ref3: np.ndarray, yaw: float, idx: np.ndarray = INNER, pitch: float = 0.0) -> float:
    """The homography residual a rigid head shaped like ``ref3`` (468, 3) would show after turning by
    ``yaw`` degrees about the vertical axis (:func:`yaw_deg`'s sign) and then tilting by ``pitch`` degrees
    about the horizontal axis (:func:`pitch_deg`'s sign), both through its centroid (orthographic view):
    the parallax its own depth relief produces. A flat object of the same outline would show 0."""
    p = np.asarray(ref3, np.float64)[idx]
    c = p.mean(0)
    a = math.radians(-yaw)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    if pitch:
        b = math.radians(pitch)  # chin up: the points nearer the camera (smaller z) move up (smaller y)
        ry = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]]) @ ry
    q = (p - c) @ ry.T + c
    return planar_residual(p[:, :2], q[:, :2])
