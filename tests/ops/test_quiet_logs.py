"""Quiet logs by default: no TensorFlow (or TensorFlow Lite) load-time notices from a real ``idp serve``
with the face and liveness models, and no failed empty-batch network call when MTCNN finds no candidate face."""
from __future__ import annotations


import numpy as np
import pytest
import requests
from support.fixtures import link_model_cache

from .conftest import idp_env

pytestmark = pytest.mark.slow
NOISE = ("oneDNN custom operations", "absl::InitializeLog", "cpu_feature_guard", "Local rendezvous",
         "Incompatible shapes", "XNNPACK delegate")


def test_detector_does_not_run_rnet_on_an_empty_batch(capfd):
    from idp.face.detector import FaceDetector

    detector = FaceDetector()
    capfd.readouterr()
    # noise and a blank frame: PNet proposes nothing (or RNet rejects everything) -> no face, quietly
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []
    assert detector.detect(np.random.RandomState(0).randint(0, 255, (240, 320, 3)).astype(np.uint8)) == []
    err = capfd.readouterr().err
    assert not [n for n in NOISE if n in err], err


def test_serve_with_face_models_is_quiet(tmp_path, tmp_path_factory, serve_factory):
    link_model_cache(tmp_path, tmp_path_factory)
    server = serve_factory(idp_env(tmp_path, IDP_FACE_ENABLED="true"))
    server.wait_ready(timeout=240, path="/readyz")  # ready = models loaded in the worker
    assert requests.get(server.url + "/readyz", timeout=5).json() == {"status": "ready"}
    out = server.output()
    assert not [n for n in NOISE if n in out], out


def test_face_cli_commands_are_quiet(tmp_path, tmp_path_factory, faces_dir):
    """`idp faces embed` (like enroll, verify and eval, which load the same engine) prints its results
    and nothing of TensorFlow's load-time notices."""
    from .conftest import run_cli

    link_model_cache(tmp_path, tmp_path_factory)
    photo = faces_dir / "face_recognition_examples" / "obama" / "obama-480p.jpg"
    result = run_cli(idp_env(tmp_path), "faces", "embed", str(photo), "--json", timeout=240)
    assert result.returncode == 0, result.stderr
    assert '"reason": null' in result.stdout
    assert not [n for n in NOISE if n in result.stderr], result.stderr
