"""The second embedding model of template versions 3 and 4: dlib's ResNet (128-d), on dlib's aligned chip.

The face is the one the engine judges (the MTCNN box of ``engine.select_subject``); dlib's 5-point
shape predictor finds its own five points inside that box, ``dlib.get_face_chip`` cuts the 150x150 chip
aligned on them (padding 0.25, as the model was trained), and ``dlib_face_recognition_resnet_model_v1``
embeds it. Both model files come from the ``face_recognition_models`` wheel (located, never imported:
its ``__init__`` needs pkg_resources) and are checked by sha256 before dlib loads them, so another file
stops the engine (ModelUnavailableError) instead of producing other embeddings. Nothing is downloaded.
``benchmarks/face_variants.py`` embeds its data sets with these same functions.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from . import settings
from .reasons import ModelUnavailableError


def model_dir() -> Path:
    """The ``models`` folder of the installed face_recognition_models package."""
    from .model import _package_dir

    return _package_dir("face_recognition_models") / "models"


def _checked(path: Path, expected: str) -> str:
    from .model import sha256_file

    if not path.is_file():
        raise ModelUnavailableError(f"{path} not found (pip install face_recognition_models==0.3.0)")
    digest = sha256_file(path)
    if digest != expected:
        raise ModelUnavailableError(f"{path} has sha256 {digest}, expected {expected}")
    return str(path)


def load_models(base: Path | None = None):
    """(5-point shape predictor, ResNet descriptor), each file sha256-checked first (settings.DLIB_*)."""
    try:
        import dlib
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ModelUnavailableError("dlib is not installed (pip install dlib-bin)") from exc
    base = Path(base) if base is not None else model_dir()
    shape = _checked(base / settings.DLIB_SHAPE_FILE, settings.DLIB_SHAPE_SHA256)
    resnet = _checked(base / settings.DLIB_RESNET_FILE, settings.DLIB_RESNET_SHA256)
    return dlib.shape_predictor(shape), dlib.face_recognition_model_v1(resnet)


def chip(predictor, rgb: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """dlib's aligned 150x150 RGB chip of the face in ``box`` (x, y, w, h in frame pixels), aligned on
    dlib's own 5 points found inside that box; and those points (5, 2)."""
    import dlib

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    x, y, w, h = (float(v) for v in box)
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    shape = predictor(rgb, rect)
    out = dlib.get_face_chip(rgb, shape, size=settings.DLIB_CHIP, padding=settings.DLIB_PADDING)
    return np.asarray(out, np.uint8), np.array([[p.x, p.y] for p in shape.parts()], np.float32)


class DlibEmbedder:
    """dlib's ResNet embedding of faces given by their boxes. One call at a time (dlib's networks keep
    per-call state), which the face slots bound anyway."""

    def __init__(self, base: Path | None = None):
        self.predictor, self.resnet = load_models(base)
        self._lock = threading.Lock()

    def chips(self, faces) -> list[np.ndarray]:
        """The aligned chips of ``faces``: (rgb, box) pairs."""
        with self._lock:
            return [chip(self.predictor, rgb, box)[0] for rgb, box in faces]

    def embed_chips(self, chips) -> np.ndarray:
        """(n, 128) float32 L2-normalised embeddings of aligned 150x150 chips, one network call."""
        chips = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        if not chips:
            return np.zeros((0, settings.DLIB_EMBEDDING_SIZE), np.float32)
        with self._lock:
            out = np.asarray(self.resnet.compute_face_descriptor(chips), np.float32)
        out = out.reshape(len(chips), settings.DLIB_EMBEDDING_SIZE)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-10)).astype(np.float32)

    def __call__(self, faces) -> np.ndarray:
        """(n, 128) embeddings of the faces in ``faces``: (rgb frame, box) pairs."""
        return self.embed_chips(self.chips(faces))
