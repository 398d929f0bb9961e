"""Dense face landmarks: MediaPipe's Face Mesh model (468 3-D points) run with TensorFlow Lite.

The model file ships in the package (``models/face_landmark.tflite``, Apache-2.0, see ``models/NOTICE``)
and its sha256 is checked before it is loaded: a missing or altered file raises
:class:`LandmarkModelError` (fail closed - no liveness decision without the model it was measured with).
TensorFlow is imported only when the first :class:`DenseLandmarker` is built, so importing
:mod:`idp.liveness` stays cheap. Not thread-safe per instance; :func:`shared_landmarker` serialises calls.

Input (as MediaPipe's face_detection_front_detection_to_roi + face_landmark graphs): a square crop
around the face detector's box, side = 1.5 x the box's longer side, rotated so that the eyes are
horizontal, resized to 192x192, RGB scaled to [0, 1]. Output: 468 points (x, y in crop pixels of the
192 input, z = depth on the same scale as x, smaller = nearer the camera, origin near the face centre)
and a face-presence logit. Points are mapped back to frame pixels; z is scaled like x.
"""
from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .shared import built_once, read_pinned

MODEL_PATH = Path(__file__).resolve().parent / "models" / "face_landmark.tflite"
#: sha256 of face_landmark.tflite from the mediapipe 0.10.14 wheel.
MODEL_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
INPUT_SIZE = 192
CROP_SCALE = 1.5  # MediaPipe's ROI: 1.5 x the detection's longer side
N_LANDMARKS = 468


class LandmarkModelError(RuntimeError):
    """The dense landmark model cannot be used (missing file, wrong hash, no TFLite runtime)."""


@dataclass
class DenseLandmarks:
    """468 landmarks of one face: ``points`` (468, 3) float32 in frame pixels (x, y; z scaled like
    x, smaller = nearer); ``presence`` = the model's face-presence probability (0..1)."""

    points: np.ndarray
    presence: float


def load_model_bytes(path: Path | str | None = None, sha256: str | None = None) -> bytes:
    """The model file's bytes after checking their sha256 (raises :class:`LandmarkModelError`); by default
    the shipped file (``MODEL_PATH``) against ``MODEL_SHA256``."""
    return read_pinned(MODEL_PATH if path is None else path, MODEL_SHA256 if sha256 is None else sha256,
                       "face landmark model", LandmarkModelError,
                       "reinstall the package (the file must be MediaPipe 0.10.14's face_landmark.tflite)")


def _interpreter(model: bytes):
    """A TFLite interpreter for ``model``: ai_edge_litert if installed, else TensorFlow's own (whose
    deprecation warning is silenced here, and only here). Its load-time notices (the XNNPACK delegate's
    INFO line) stay off stderr."""
    from idp.native_notices import import_tensorflow_quietly, notices_filtered

    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore
    except ImportError:
        try:
            import_tensorflow_quietly()
            import tensorflow as tf
        except ImportError as e:  # pragma: no cover - tensorflow is a dependency
            raise LandmarkModelError(f"no TFLite runtime: {e}") from None
        with warnings.catch_warnings(), notices_filtered():
            warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
            it = tf.lite.Interpreter(model_content=model, num_threads=1)
            it.allocate_tensors()
            return it
    with notices_filtered():
        it = Interpreter(model_content=model, num_threads=1)
        it.allocate_tensors()
        return it


def crop_transform(box, eyes=None) -> np.ndarray:
    """2x3 affine map from crop pixels (0..192) to frame pixels for a face ``box`` (x, y, w, h).

    ``eyes``: ((x, y) of the image-left eye, (x, y) of the image-right eye) to undo head roll, as
    MediaPipe does; None = upright crop.
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    side = CROP_SCALE * max(w, h)
    angle = 0.0
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes
        angle = math.atan2(ry - ly, rx - lx)
    c, s = math.cos(angle), math.sin(angle)
    k = side / INPUT_SIZE
    # crop (u, v) -> frame: centre + R(angle) @ ((u, v) - 96) * k
    a = np.array([[c * k, -s * k], [s * k, c * k]])
    t = np.array([cx, cy]) - a @ np.array([INPUT_SIZE / 2, INPUT_SIZE / 2])
    return np.c_[a, t]


def crop(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The 192x192 float32 [0, 1] model input sampled from ``rgb`` through the crop->frame map ``m``
    (bilinear; outside the frame = black, as MediaPipe's zero border)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8))
    out = img.transform((INPUT_SIZE, INPUT_SIZE), Image.AFFINE, tuple(m.reshape(-1)), Image.BILINEAR)
    return np.asarray(out, np.float32) / 255.0


class DenseLandmarker:
    """Runs the hash-checked Face Mesh model on a face given by its detector box."""

    def __init__(self, path: Path | str | None = None):
        self._it = _interpreter(load_model_bytes(path))
        inp = self._it.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise LandmarkModelError(f"unexpected model input {inp['shape']}")
        self._in = inp["index"]
        outs = {tuple(o["shape"])[-1]: o["index"] for o in self._it.get_output_details()}
        if 3 * N_LANDMARKS not in outs or 1 not in outs:
            raise LandmarkModelError("unexpected model outputs")
        self._lm, self._flag = outs[3 * N_LANDMARKS], outs[1]
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, box, landmarks5: dict | None = None) -> DenseLandmarks:
        """Landmarks of the face in ``box`` (x, y, w, h frame pixels); ``landmarks5`` (the detector's
        five points, optional) levels the crop by the eyes."""
        eyes = None
        if landmarks5 and "left_eye" in landmarks5 and "right_eye" in landmarks5:
            eyes = (landmarks5["left_eye"], landmarks5["right_eye"])
        m = crop_transform(box, eyes)
        x = crop(rgb, m)[None]
        with self._lock:
            self._it.set_tensor(self._in, x)
            self._it.invoke()
            raw = self._it.get_tensor(self._lm).reshape(N_LANDMARKS, 3).astype(np.float64)
            logit = float(self._it.get_tensor(self._flag).reshape(-1)[0])
        xy = raw[:, :2] @ m[:, :2].T + m[:, 2]
        k = float(np.hypot(m[0, 0], m[1, 0]))  # crop px -> frame px
        pts = np.c_[xy, raw[:, 2] * k].astype(np.float32)
        return DenseLandmarks(points=pts, presence=1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0))))


#: The process-wide model (built on first use; raises :class:`LandmarkModelError`).
shared_landmarker = built_once(DenseLandmarker)
