import re

import numpy as np

from idp.liveness import frame_fingerprint, fingerprints_match, perceptual_hash, phash_distance, thumbnail


def _scene(seed=0, shift=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.zeros((480, 640, 3), np.float32)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, 640), rng.uniform(0, 480), rng.uniform(30, 150)
        img += rng.uniform(20, 90, 3) * np.exp(-((xx - cx - shift) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
    return np.clip(img + 30, 0, 255).astype(np.uint8)


def test_thumbnail_shape_and_range():
    th = thumbnail(_scene())
    assert th.shape == (32, 32) and th.dtype == np.uint8
    assert thumbnail(np.full((7, 5), 200, np.uint8)).min() == 200  # tiny grey input works


def test_fingerprint_format_and_exact_match():
    img = _scene()
    fp = frame_fingerprint(img)
    assert re.fullmatch(r"v1:[0-9a-f]{16}:[0-9a-f]{64}", fp)
    assert fp == frame_fingerprint(img.copy())
    assert fingerprints_match(fp, frame_fingerprint(img.copy()))


def test_near_duplicate_matches():
    img = _scene()
    rng = np.random.default_rng(5)
    noisy = np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
    brighter = np.clip(img.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    small = img[::2, ::2]  # rescaled
    for other in (noisy, brighter, small):
        assert frame_fingerprint(other) != frame_fingerprint(img)
        assert fingerprints_match(frame_fingerprint(img), frame_fingerprint(other))


def test_different_content_does_not_match():
    a = frame_fingerprint(_scene(0))
    assert not fingerprints_match(a, frame_fingerprint(_scene(1)))
    assert not fingerprints_match(a, frame_fingerprint(_scene(0, shift=60)))
    assert phash_distance(a, frame_fingerprint(_scene(1))) > 4


def test_grey_and_rgb_inputs():
    img = _scene()
    grey = (img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114).astype(np.uint8)
    assert bin(perceptual_hash(img) ^ perceptual_hash(grey)).count("1") <= 2


def test_exact_only_mode():
    img = _scene()
    brighter = np.clip(img.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    a, b = frame_fingerprint(img), frame_fingerprint(brighter)
    assert fingerprints_match(a, frame_fingerprint(img.copy()), max_distance=-1)
    assert not fingerprints_match(a, b, max_distance=-1)
