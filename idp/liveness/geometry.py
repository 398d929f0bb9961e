"""Five-landmark geometry (pure numpy): landmark arrays and eye distance for the burst checks.

The canonical nose position below was the turn measure of the previous method (superseded by the
dense-landmark yaw and 3-D tests of :mod:`.rigidity`; its evaluation is in the git history of
benchmarks/liveness_eval.py and docs/liveness.md). Its reasoning, for the record:

Conventions: image coordinates (x right, y down); MTCNN's ``left_eye`` / ``mouth_left`` are the
points on the *image* left (the subject's right side in an unmirrored camera frame).

The central quantity is the **canonical nose position**: the projective map (homography) that
sends the four outer landmarks -- left eye, right eye, right mouth corner, left mouth corner --
to the unit square's corners is applied to the nose. Every view of a *flat* face picture (moved,
rotated, scaled, tilted, seen in perspective) is a homography of the picture, and homographies
compose, so the canonical nose position of a flat picture never changes (up to landmark noise).
A real head is not flat: the nose tip stands 2-3 cm in front of the eye/mouth plane, so turning
the head moves the canonical nose left/right (yaw) and nodding moves it up/down (pitch). This
parallax is what the challenge checks measure, which makes them blind to planar motion by
construction.
"""
from __future__ import annotations

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: The four points treated as the "face plane", in the order mapped to the unit square corners.
QUAD_NAMES = ("left_eye", "right_eye", "mouth_right", "mouth_left")
UNIT_SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def landmark_array(landmarks: dict, names=LANDMARK_NAMES) -> np.ndarray:
    """(len(names), 2) float array of the named landmarks."""
    return np.array([[float(landmarks[n][0]), float(landmarks[n][1])] for n in names], dtype=np.float64)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares homography (3x3, h33=1) mapping ``src`` (N>=4, 2) to ``dst``; None if degenerate."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = len(src)
    if n < 4:
        raise ValueError("a homography needs at least 4 point pairs")
    # normalise both point sets (Hartley) for conditioning
    def norm(p):
        c = p.mean(0)
        s = np.sqrt(2) / max(np.sqrt(((p - c) ** 2).sum(1)).mean(), 1e-12)
        return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])

    ts, td = norm(src), norm(dst)
    sp = (ts @ np.c_[src, np.ones(n)].T).T[:, :2]
    dp = (td @ np.c_[dst, np.ones(n)].T).T[:, :2]
    a = np.zeros((2 * n, 9))
    for i, ((x, y), (u, v)) in enumerate(zip(sp, dp)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y, -u]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y, -v]
    _, sv, vt = np.linalg.svd(a)
    if n == 4 and sv[-2] < 1e-9 * max(sv[0], 1e-12):
        return None  # degenerate configuration (three points collinear)
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(td) @ h @ ts
    if abs(h[2, 2]) < 1e-12:
        return None
    return h / h[2, 2]


def homography4(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Exact homography for 4 point pairs (fast 8x8 solve); None if degenerate."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    c = src.mean(0)
    sc = max(np.abs(src - c).max(), 1e-12)
    p = (src - c) / sc  # conditioning
    a = np.zeros((8, 8))
    x, y = p[:, 0], p[:, 1]
    u, v = dst[:, 0], dst[:, 1]
    a[0::2, 0], a[0::2, 1], a[0::2, 2] = x, y, 1
    a[0::2, 6], a[0::2, 7] = -u * x, -u * y
    a[1::2, 3], a[1::2, 4], a[1::2, 5] = x, y, 1
    a[1::2, 6], a[1::2, 7] = -v * x, -v * y
    b = dst.reshape(-1)
    try:
        h = np.append(np.linalg.solve(a, b), 1.0).reshape(3, 3)
    except np.linalg.LinAlgError:
        return None
    t = np.array([[1 / sc, 0, -c[0] / sc], [0, 1 / sc, -c[1] / sc], [0, 0, 1]])
    h = h @ t
    if not np.all(np.isfinite(h)) or abs(h[2, 2]) < 1e-12 or np.abs(h).max() > 1e12:
        return None
    return h / h[2, 2]


def apply_homography(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.atleast_2d(np.asarray(pts, np.float64))
    q = (h @ np.c_[pts, np.ones(len(pts))].T).T
    return q[:, :2] / q[:, 2:3]


def canonical_nose(landmarks: dict) -> tuple[float, float] | None:
    """Nose position in the frame where the eye/mouth quad is the unit square (projective invariant).

    ``u`` grows towards the image right, ``v`` downwards. A frontal face gives roughly
    (0.5, 0.45-0.6). Returns None for a degenerate (folded / collinear) quad.
    """
    pts = landmark_array(landmarks, QUAD_NAMES)
    if not _convex_quad(pts):
        return None
    h = homography4(pts, UNIT_SQUARE)
    if h is None:
        return None
    nose = landmarks["nose"]
    q = h @ np.array([float(nose[0]), float(nose[1]), 1.0])
    u, v = q[0] / q[2], q[1] / q[2]
    if not (np.isfinite(u) and np.isfinite(v)):
        return None
    return float(u), float(v)


def _convex_quad(pts: np.ndarray) -> bool:
    """True if the 4 points form a convex quadrilateral in the given order (no fold-over)."""
    signs = []
    for i in range(4):
        a, b, c = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
        cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
        signs.append(cross)
    signs = np.array(signs)
    return bool(np.all(signs > 0) or np.all(signs < 0))


def face_scale(landmarks: dict) -> float:
    """A size measure of the face in pixels: sqrt of the eye/mouth quad area plus eye distance.

    Robust to moderate yaw (the quad shrinks horizontally, but the vertical extent holds).
    """
    p = landmark_array(landmarks, QUAD_NAMES)
    x, y = p[:, 0], p[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    return float(np.sqrt(area))


def inter_ocular(landmarks: dict) -> float:
    p = landmark_array(landmarks, ("left_eye", "right_eye"))
    return float(np.hypot(*(p[1] - p[0])))


def similarity_residual(src: np.ndarray, dst: np.ndarray) -> float:
    """RMS residual of the best similarity (rotation+uniform scale+translation) src->dst,
    divided by the RMS spread of dst: 0 for a pure similarity, grows with shape change
    (foreshortening, perspective, non-rigid motion)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    sc = src - src.mean(0)
    dc = dst - dst.mean(0)
    # complex-number least squares: dst = a * src
    zs = sc[:, 0] + 1j * sc[:, 1]
    zd = dc[:, 0] + 1j * dc[:, 1]
    denom = np.vdot(zs, zs).real
    if denom <= 1e-12:
        return 0.0
    a = np.vdot(zs, zd) / denom
    res = zd - a * zs
    spread = np.sqrt((np.abs(zd) ** 2).mean())
    if spread <= 1e-12:
        return 0.0
    return float(np.sqrt((np.abs(res) ** 2).mean()) / spread)
