"""The dense landmark model: shipped file, hash check (fail closed), output on a real frame."""
import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from idp.liveness.landmarks import (
    MODEL_PATH,
    MODEL_SHA256,
    DenseLandmarker,
    LandmarkModelError,
    crop_transform,
    load_model_bytes,
)


def test_shipped_model_has_the_pinned_hash_and_its_notice():
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    notice = (MODEL_PATH.parent / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and MODEL_SHA256 in notice
    assert "Apache License" in (MODEL_PATH.parent / "LICENSE-mediapipe.txt").read_text()


def test_altered_or_missing_model_fails_closed(tmp_path):
    bad = tmp_path / "face_landmark.tflite"
    data = bytearray(MODEL_PATH.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(LandmarkModelError, match="sha256"):
        DenseLandmarker(bad)
    with pytest.raises(LandmarkModelError, match="not found"):
        load_model_bytes(tmp_path / "missing.tflite")


def test_crop_is_mediapipes_roi():
    m = crop_transform((100, 50, 80, 100), eyes=((120, 90), (160, 90)))
    corners = np.array([[0, 0, 1], [192, 192, 1]]) @ m.T
    assert np.allclose(corners, [[65, 25], [215, 175]])  # 1.5 x the longer side (100), centred, level eyes


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
def test_landmarks_of_a_real_face_land_on_it(faces_dir):
    pytest.importorskip("mtcnn")
    from idp.face.detector import FaceDetector

    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", "2", "-i",
                          str(faces_dir / "video" / "liveportrait_driving" / "d3.mp4"), "-frames:v", "1",
                          "-vf", "scale=640:-2", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    rgb = np.frombuffer(raw, np.uint8).reshape(-1, 640, 3)
    face = max(FaceDetector().detect(rgb), key=lambda d: d.area)
    out = DenseLandmarker()(rgb, face.box, face.landmarks)
    assert out.points.shape == (468, 3) and out.presence > 0.9
    iod = np.hypot(*np.subtract(face.landmarks["right_eye"], face.landmarks["left_eye"]))
    # the nose tip (1) and the eye centres agree with MTCNN's points within a fifth of the eye distance
    left = out.points[[33, 133], :2].mean(0)
    right = out.points[[362, 263], :2].mean(0)
    assert np.hypot(*(left - face.landmarks["left_eye"])) < 0.2 * iod
    assert np.hypot(*(right - face.landmarks["right_eye"])) < 0.2 * iod
    assert np.hypot(*(out.points[1, :2] - face.landmarks["nose"])) < 0.2 * iod
