"""``rigidity.fit_homography``: the least-squares homography the 3-D check fits between two views."""
import numpy as np
import pytest

from idp.liveness.rigidity import fit_homography


@pytest.mark.parametrize("n", [4, 5, 468])
def test_fit_homography_recovers_a_known_map(n):
    """Exact for 4 points (the DLT's 8 equations: the reduced SVD would leave out the null vector), and
    for more points mapped exactly by one homography."""
    rng = np.random.default_rng(n)
    h = np.array([[1.1, 0.2, 30.0], [-0.15, 0.9, -12.0], [4e-4, -3e-4, 1.0]])
    src = rng.uniform(0, 200, (n, 2))
    p = np.c_[src, np.ones(n)] @ h.T
    dst = p[:, :2] / p[:, 2:]
    got = fit_homography(src, dst)
    assert np.allclose(got / got[2, 2], h, atol=1e-6)
