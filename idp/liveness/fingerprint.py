"""Frame thumbnails, exact pixel digests and face-crop perceptual hashes (replay detection).

Pure numpy (PIL for the face crop's warp):

* :func:`thumbnail`: a 32x32 grey thumbnail of the whole frame, for the static-feed check;
* :func:`pixel_digest`: sha256 of the exact pixels (with shape and dtype), the replay store's key for
  byte-identical frame reuse;
* :func:`face_hash`: a perceptual hash of the landmark-aligned face crop, which catches the same face
  picture re-encoded, rescaled, shifted or cropped. A whole-frame perceptual hash is not used: it also
  matched about half of the pairs of *different* frames of the same person in the same scene >= 1 s
  apart (docs/liveness.md).
"""
from __future__ import annotations

import hashlib

import numpy as np

from .geometry import landmark_array

THUMB_SIZE = 32


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grey float32 image (0..255) from an HxW grey or HxWx3/4 RGB(A) array."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float32)
        return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114
    if a.ndim == 2:
        return a.astype(np.float32)
    raise ValueError(f"expected an HxW or HxWxC image, got shape {a.shape}")


def _area_resize(gray: np.ndarray, size: int) -> np.ndarray:
    """Box-filter downscale of a 2-D array to ``size`` x ``size`` (any input size)."""
    h, w = gray.shape
    if h < 1 or w < 1:
        raise ValueError("empty image")
    if h % size == 0 and w % size == 0:
        # equal bins (640x480 -> 20x15 pixels each): the same means as the integral image below (sums of
        # float32 values in float64), about 7x faster (5 -> 0.7 ms a 640x480 frame)
        bh, bw = h // size, w // size
        s = np.asarray(gray).reshape(size, bh, size, bw).sum(axis=(1, 3), dtype=np.float64)
        return (s / (bh * bw)).astype(np.float32)
    return _integral_resize(gray, size)


def _integral_resize(gray: np.ndarray, size: int) -> np.ndarray:
    """:func:`_area_resize` through an integral image (any size of input)."""
    h, w = gray.shape
    # integral image: mean over integer bins [floor(i*h/n), ceil((i+1)*h/n)) (>= 1 pixel each)
    idx = np.arange(size)
    y0 = np.minimum(idx * h // size, h - 1)
    y1 = np.maximum(-(-(idx + 1) * h // size), y0 + 1)
    x0 = np.minimum(idx * w // size, w - 1)
    x1 = np.maximum(-(-(idx + 1) * w // size), x0 + 1)
    ii = np.zeros((h + 1, w + 1), np.float64)
    ii[1:, 1:] = gray.astype(np.float64).cumsum(0).cumsum(1)
    y0, y1, x0, x1 = y0[:, None], y1[:, None], x0[None, :], x1[None, :]
    s = ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]
    area = np.maximum((y1 - y0) * (x1 - x0), 1)
    return (s / area).astype(np.float32)


def thumbnail(image: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """Small grey thumbnail (uint8, ``size`` x ``size``) of a whole frame, for static-feed checks."""
    return np.clip(_area_resize(to_gray(image), size) + 0.5, 0, 255).astype(np.uint8)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def pixel_digest(image: np.ndarray) -> str:
    """sha256 (hex) of the exact pixels with their shape and dtype: equal only for byte-identical frames.
    The replay store's key (``liveness_frames``): the formula must not change, or stored entries stop
    matching."""
    a = np.ascontiguousarray(np.asarray(image))
    h = hashlib.sha256()
    h.update(repr((a.shape, str(a.dtype))).encode())
    h.update(a.tobytes())
    return h.hexdigest()


# --- face-crop perceptual hash (replays of re-encoded / rescaled / cropped frames) ---------------

FACE_CROP = 64
#: where the five detector landmarks go in the aligned FACE_CROP x FACE_CROP crop (fractions):
#: image-left eye, image-right eye, nose, image-left / image-right mouth corner
FACE_TEMPLATE = np.array([[0.34, 0.40], [0.66, 0.40], [0.50, 0.56], [0.37, 0.72], [0.63, 0.72]])
FACE_HASH_BITS = 256
_DCT64 = _dct_matrix(FACE_CROP)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping src to dst."""
    sc, dc = src.mean(0), dst.mean(0)
    zs = (src[:, 0] - sc[0]) + 1j * (src[:, 1] - sc[1])
    zd = (dst[:, 0] - dc[0]) + 1j * (dst[:, 1] - dc[1])
    a = np.vdot(zs, zd) / max(np.vdot(zs, zs).real, 1e-12)
    m = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return np.c_[m, dc - m @ sc]


_DENSE_TEMPLATE = None


def _dense_template() -> np.ndarray:
    """(468, 2) crop positions of the dense landmarks of the frontal head model (face ~0.8 crop wide)."""
    global _DENSE_TEMPLATE
    if _DENSE_TEMPLATE is None:
        from pathlib import Path
        m = np.load(Path(__file__).resolve().parent / "models" / "face_shape_468.npy").astype(np.float64)[:, :2]
        c = m.mean(0)
        _DENSE_TEMPLATE = (m - c) / 180.0 + 0.5  # mm -> crop fraction (the head model is ~140 mm wide)
    return _DENSE_TEMPLATE


def aligned_face(image: np.ndarray, landmarks) -> np.ndarray:
    """Grey FACE_CROP x FACE_CROP float32 crop of the face, aligned by a similarity fitted to its
    landmarks - the five detector points (dict) or the 468 dense ones ((468, 2 or 3) array, more
    stable) - so that the same face content gives the same crop whatever the frame's scale, shift or
    crop."""
    from PIL import Image

    if isinstance(landmarks, dict):
        src = landmark_array(landmarks)
        tpl = FACE_TEMPLATE
    else:
        src = np.asarray(landmarks, np.float64)[:, :2]
        tpl = _dense_template()
    m = _similarity(tpl * FACE_CROP, src)  # crop -> frame (PIL wants output -> input)
    g = to_gray(image)
    img = Image.fromarray(np.clip(g, 0, 255).astype(np.uint8))
    out = img.transform((FACE_CROP, FACE_CROP), Image.AFFINE, tuple(m.reshape(-1)), Image.BILINEAR)
    return np.asarray(out, np.float32)


def face_hash(image: np.ndarray, landmarks) -> int:
    """256-bit perceptual hash of the landmark-aligned face crop: its 16x16 lowest DCT frequencies
    without DC (brightness-invariant), thresholded at their median, padded with a 0 bit."""
    c = aligned_face(image, landmarks).astype(np.float64)
    d = _DCT64 @ c @ _DCT64.T
    low = d[:16, :16].flatten()[1:]
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits) + "0", 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


#: Hamming distance (of 256 bits) at or below which two face hashes are the same picture
#: (re-encoded, rescaled, shifted); measured in docs/liveness.md.
FACE_HASH_MAX_BITS = 16


#: A stored frame is evidence of a replay only if it shows a *passing* pose: at most this many other
#: frames of its capture are within FACE_HASH_MAX_BITS of it (at 150 ms per frame: the pose lasted
#: under 0.3 s, as during a turn). A pose held longer - facing the camera before and between the moves -
#: recurs in every sign-in of a person sitting still in the same place, so a new frame matching it says
#: nothing about a replay (measured: 4 of 25 later same-scene bursts of the shared clips were refused
#: when every stored frame counted, none with this rule; docs/liveness.md). A replay that passes the
#: challenge must contain the turns, whose frames are passing poses.
HELD_POSE_NEIGHBOURS = 1


def neighbour_counts(hashes, max_bits: int = FACE_HASH_MAX_BITS) -> list[int]:
    """For each hash (int or 64 hex digits), how many of the *other* hashes are within ``max_bits``."""
    hs = [_int(h) for h in hashes]
    return [sum(1 for j, g in enumerate(hs) if j != i and hamming(h, g) <= max_bits) for i, h in enumerate(hs)]


def passing_poses(hashes, max_bits: int = FACE_HASH_MAX_BITS) -> list:
    """The hashes of one capture that are evidence of a replay when matched: those with at most
    HELD_POSE_NEIGHBOURS other hashes of the capture within ``max_bits`` (the rule the stored ``near``
    count of idp.faceweb.liveness applies)."""
    hashes = list(hashes)
    return [h for h, n in zip(hashes, neighbour_counts(hashes, max_bits)) if n <= HELD_POSE_NEIGHBOURS]


#: Two frames farther apart than this are no motion (:func:`segment_distance`): frames of a turn 150 ms
#: apart differ in 40-100 bits (at most 124 measured on the shared clips), unrelated faces in about 128.
SEGMENT_MAX_BITS = FACE_HASH_BITS // 2


def segment_distance(h: int, a: int, b: int) -> float:
    """How far ``h`` is from the motion between two consecutive frames ``a`` and ``b`` of one recording,
    on the scale of :func:`hamming`. A frame filmed between them (the same recording sampled at another
    moment) has low-frequency DCT coefficients between theirs: where their signs agree its sign agrees
    too, where they differ it may take either. So only the bits on which ``a`` and ``b`` agree are
    compared, and the count of those on which ``h`` differs is scaled to the whole hash: a long segment
    (few bits compared) is no easier for a random hash to fall on than a frame (``a == b`` gives the
    Hamming distance). Ends more than SEGMENT_MAX_BITS apart are no motion and give FACE_HASH_BITS: with
    few bits compared, most hashes near either end would fall on it."""
    apart = hamming(a, b)
    if apart > SEGMENT_MAX_BITS:
        return float(FACE_HASH_BITS)
    return bin((h ^ a) & (h ^ b)).count("1") * FACE_HASH_BITS / (FACE_HASH_BITS - apart)


def near_copy(fh, stored, max_bits: int = FACE_HASH_MAX_BITS, segments=()) -> bool:
    """Whether face hash ``fh`` (int, or 64 hex digits) is within ``max_bits`` of one of ``stored``, or
    within ``max_bits`` of one of ``segments`` (pairs of consecutive frames of a stored capture, by
    :func:`segment_distance`): a copy of a stored frame, or of the same recording filmed at a moment
    between two stored frames."""
    if fh is None or fh == "":
        return False
    h = _int(fh)
    return any(hamming(h, _int(g)) <= max_bits for g in stored) or \
        any(segment_distance(h, _int(a), _int(b)) <= max_bits for a, b in segments)


def _int(h) -> int:
    return int(h, 16) if isinstance(h, str) else int(h)
