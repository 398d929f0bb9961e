"""The face-outline measures of benchmarks/liveness_contour.py (a measurement, not a test of the decision):
exact answers on constructed geometry, and the direction of the answer for a rigid head and a turned print."""
import math
import sys
from pathlib import Path

import numpy as np

from idp.liveness import rigidity
from idp.liveness.synthetic import head_burst, photo_burst

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from liveness_contour import OVAL, _sides, outline_occlusion, outline_squash  # noqa: E402


def _frontal() -> np.ndarray:
    return head_burst(yaw=0.0, n=1, noise_px=0.0)[0].dense.astype(np.float64)


def _similar(p: np.ndarray, angle_deg: float, scale: float, shift) -> np.ndarray:
    """``p`` rotated in the image plane about its centroid, scaled (depth too) and moved."""
    a = math.radians(angle_deg)
    r = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    c = p.mean(0)
    return (p - c) @ r.T * scale + c + np.array([*shift, 0.0])


def test_a_similar_view_leaves_no_outline_residual():
    ref = _frontal()
    cur = _similar(ref, 12.0, 1.3, (40.0, -25.0))
    assert abs(outline_squash(ref, cur)) < 1e-9
    assert np.allclose(outline_occlusion(ref, cur, 5.0), 0.0, atol=1e-9)


def test_squash_is_the_inward_shift_of_the_side_outline_over_the_face_size():
    ref = _frontal()
    right, left = _sides(ref)
    assert right.sum() >= 4 and left.sum() >= 4  # both cheeks' outline, not the forehead or the chin
    cur = ref.copy()
    d = 3.0  # px, each side's outline towards the face's centre; the inner face unchanged
    cur[OVAL[right], 0] -= d
    cur[OVAL[left], 0] += d
    size = rigidity._size(ref[rigidity.INNER, :2])
    assert math.isclose(outline_squash(ref, cur), d / size, rel_tol=1e-9)
    wider = ref.copy()
    wider[OVAL[right], 0] += d
    wider[OVAL[left], 0] -= d
    assert math.isclose(outline_squash(ref, wider), -d / size, rel_tol=1e-9)


def test_occlusion_reads_the_far_side_as_the_side_the_nose_moves_towards():
    ref = _frontal()
    right, left = _sides(ref)
    size = rigidity._size(ref[rigidity.INNER, :2])
    cur = ref.copy()
    cur[OVAL[right], 0] += 2.0  # the image-right outline moves right, the rest stays
    far, near = outline_occlusion(ref, cur, yaw=8.0)  # nose moved right: the right side is the far side
    assert math.isclose(far, 2.0 / size, rel_tol=1e-9) and abs(near) < 1e-9
    far, near = outline_occlusion(ref, cur, yaw=-8.0)  # nose moved left: the right side is near, moved against the turn
    assert abs(far) < 1e-9 and math.isclose(near, -2.0 / size, rel_tol=1e-9)


def test_a_turned_print_squashes_its_outline_a_rigid_head_does_not():
    """A flat picture turned 35 degrees is foreshortened by cos 35 = 0.82, while its landmarks' depth is the
    printed face's (as the model reads a print): its outline lies well inside the inner face's rigid
    prediction. A rigid head (its outline points fixed on its surface: the synthetic model has no occluding
    contour) turned 15 degrees, seen in perspective, stays within 0.02 of it."""
    head = head_burst(yaw=15.0, n=1, noise_px=0.0)[0].dense
    assert abs(outline_squash(_frontal(), head)) < 0.02
    flat0 = photo_burst(yaw=0.0, n=1, noise_px=0.0)[0].dense
    flat35 = photo_burst(yaw=35.0, n=1, noise_px=0.0)[0].dense
    assert outline_squash(flat0, flat35) > 0.1
    bent0 = photo_burst(yaw=0.0, n=1, noise_px=0.0, bend=0.006)[0].dense
    bent35 = photo_burst(yaw=35.0, n=1, noise_px=0.0, bend=0.006)[0].dense
    assert 0.05 < outline_squash(bent0, bent35) < outline_squash(flat0, flat35)  # the bend keeps some width
