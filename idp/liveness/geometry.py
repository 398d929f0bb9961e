"""Five-landmark geometry (pure numpy): landmark arrays and eye distance for the burst checks.

The previous method's turn measure, the canonical nose position (the nose mapped by the homography that
sends the four outer landmarks to a unit square: constant for a flat picture, moved by a head's parallax),
was superseded by the dense-landmark yaw and 3-D tests of :mod:`.rigidity`; it and its evaluation are in
the git history (docs/liveness.md, "Previous method").

Conventions: image coordinates (x right, y down); MTCNN's ``left_eye`` / ``mouth_left`` are the
points on the *image* left (the subject's right side in an unmirrored camera frame).
"""
from __future__ import annotations

import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def landmark_array(landmarks: dict, names=LANDMARK_NAMES) -> np.ndarray:
    """(len(names), 2) float array of the named landmarks."""
    return np.array([[float(landmarks[n][0]), float(landmarks[n][1])] for n in names], dtype=np.float64)


def eye_line_deg(landmarks: dict) -> float:
    """How far the line through the eyes is from the image's horizontal, degrees (0-90, either way, mirror
    images alike): the face's roll in the image plane."""
    dx, dy = np.diff(landmark_array(landmarks, ("left_eye", "right_eye")), axis=0)[0]
    deg = abs(float(np.degrees(np.arctan2(dy, dx))))
    return 180.0 - deg if deg > 90.0 else deg


def inter_ocular(landmarks: dict) -> float:
    p = landmark_array(landmarks, ("left_eye", "right_eye"))
    return float(np.hypot(*(p[1] - p[0])))
