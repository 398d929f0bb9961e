import numpy as np
import pytest

from idp.liveness.geometry import (
    UNIT_SQUARE,
    apply_homography,
    canonical_nose,
    homography,
    similarity_residual,
)

FACE = {"left_eye": (100.0, 100.0), "right_eye": (160.0, 102.0), "nose": (131.0, 135.0),
        "mouth_left": (108.0, 165.0), "mouth_right": (152.0, 166.0)}


def _random_homography(rng):
    h = np.eye(3)
    h[:2, :2] = [[1.1, 0.2], [-0.15, 0.9]] + rng.normal(0, 0.1, (2, 2))
    h[:2, 2] = rng.uniform(-50, 50, 2)
    h[2, :2] = rng.uniform(-1e-3, 1e-3, 2)
    return h


def _warp(lm, h):
    return {k: tuple(apply_homography(h, np.array(v))[0]) for k, v in lm.items()}


def test_homography_recovers_known_map():
    rng = np.random.default_rng(1)
    h = _random_homography(rng)
    src = rng.uniform(0, 300, (6, 2))
    est = homography(src, apply_homography(h, src))
    np.testing.assert_allclose(est, h / h[2, 2], atol=1e-8)


def test_homography_degenerate_is_none():
    src = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], float)
    assert homography(src, UNIT_SQUARE) is None


def test_canonical_nose_invariant_under_planar_views():
    rng = np.random.default_rng(2)
    u0, v0 = canonical_nose(FACE)
    assert 0.3 < u0 < 0.7 and 0.3 < v0 < 0.7
    for _ in range(20):
        u, v = canonical_nose(_warp(FACE, _random_homography(rng)))
        assert abs(u - u0) < 1e-9 and abs(v - v0) < 1e-9


def test_canonical_nose_moves_with_nose():
    lm = dict(FACE, nose=(141.0, 135.0))
    assert canonical_nose(lm)[0] > canonical_nose(FACE)[0] + 0.1


def test_canonical_nose_folded_quad_is_none():
    lm = dict(FACE, left_eye=(170.0, 100.0))  # eyes swapped over: not a convex quad in order
    assert canonical_nose(lm) is None


def test_similarity_residual():
    src = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    a = np.deg2rad(30)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    assert similarity_residual(src, 3 * src @ rot.T + 5) < 1e-9
    squashed = src * [0.7, 1.0]  # foreshortening
    assert similarity_residual(src, squashed) > 0.05
    with pytest.raises(ValueError):
        homography(src[:3], src[:3])


def test_homography4_matches_least_squares():
    rng = np.random.default_rng(3)
    from idp.liveness.geometry import homography4
    for _ in range(10):
        h = _random_homography(rng)
        src = rng.uniform(0, 300, (4, 2))
        dst = apply_homography(h, src)
        np.testing.assert_allclose(apply_homography(homography4(src, dst), src), dst, atol=1e-6)
    assert homography4(np.array([[0, 0], [1, 1], [2, 2], [3, 3]], float), UNIT_SQUARE) is None
