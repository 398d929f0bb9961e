"""Face-engine fixtures: one engine (real models) for the whole session, real photos from the shared data."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def engine(face_data_dir):
    from idp.face import get_engine

    return get_engine(face_data_dir)


@pytest.fixture(scope="session")
def photos(faces_dir, engine) -> dict:
    """Named real photos (paths); the per-person lists hold only photos that pass the quality checks."""
    color = faces_dir / "lfw_color65_240px"
    examples = faces_dir / "face_recognition_examples"

    def person(name, n):
        files = []
        for path in sorted((color / name).glob("*.jpg")):
            if engine.analyze(load_rgb(path), embed="never").ok:
                files.append(path)
            if len(files) == n:
                return files
        raise AssertionError(f"not enough good photos of {name}")

    return {
        "putin": person("Vladimir_Putin", 10),
        "blair": person("Tony_Blair", 10),
        "obama": sorted((examples / "obama").glob("knn_examples_*.jpg")) + [examples / "obama" / "tests_obama3.jpg"],
        "biden": sorted((examples / "biden").glob("*.jpg")),
        "partial": examples / "obama" / "tests_obama_partial_face.jpg",
    }


def load_rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def to_jpeg(arr: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def to_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
