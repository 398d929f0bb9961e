"""The model port and the MTCNN fix, against the originals."""
from __future__ import annotations

import numpy as np
import pytest

from idp.face import settings
from idp.face.detector import FaceDetector, scale_pyramid
from idp.face.quality import crop_face

from .conftest import load_rgb


@pytest.mark.slow
def test_port_equals_frozen_graph(engine, photos):
    """Our Keras embedding of real faces equals the frozen graph run by TensorFlow, to 1e-4."""
    import tensorflow as tf

    from idp.face.model import load_graph_def

    graph_def = load_graph_def()  # also checks the sha256 (704afe26...)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    frozen = wrapped.prune("input:0", "embeddings:0")
    crops = []
    for path in (photos["putin"][0], photos["blair"][0], photos["obama"][0]):
        rgb = load_rgb(path)
        analysis = engine.analyze(rgb, embed="never")
        crops.append(crop_face(rgb, analysis.box))
    crops = np.stack(crops)
    ours = engine.embedder(crops)  # the model itself (embed_faces adds the mirror image)
    theirs = np.concatenate([frozen(tf.constant(engine.embedder.standardise(c[None]))).numpy() for c in crops])
    assert ours.shape == (3, 512)
    assert np.abs(ours - theirs).max() < 1e-4


def test_weights_cache_has_checksum(engine, face_data_dir):
    from idp.face.model import sha256_file

    weights = face_data_dir / "models" / settings.WEIGHTS_FILE
    sidecar = weights.with_name(weights.name + ".sha256")
    assert weights.is_file() and sidecar.is_file()
    assert sidecar.read_text().split()[0] == sha256_file(weights)


def test_scale_pyramid_stops_at_pnet_input():
    for w, h, mfs in [(640, 480, 20), (640, 480, 80), (320, 240, 40), (250, 250, 120), (1920, 1080, 200)]:
        scales = scale_pyramid(w, h, mfs)
        assert len(scales) >= 1
        assert scales[0] == pytest.approx(12 / mfs)
        assert min(w, h) * scales[-1] >= 12  # every level still fits PNet's 12x12 input
        assert min(w, h) * scales[-1] * 0.709 < 12  # and the pyramid goes as far as it can


def test_min_face_size_fix(photos):
    """mtcnn 1.0.0 finds nothing (or crashes) with min_face_size != 20; the fixed stage finds the face."""
    from mtcnn import MTCNN

    rgb = load_rgb(photos["obama"][0])
    try:
        stock = MTCNN().detect_faces(rgb, min_face_size=80)
    except ValueError:  # newer Keras raises on the empty convolution instead of returning []
        stock = []
    assert stock == []
    fixed = FaceDetector(compiled=False).detect(rgb, max_side=0, min_face=80)
    assert len(fixed) == 1 and fixed[0].confidence > 0.95
    assert min(fixed[0].box[2:]) > 80


def test_detection_leaves_mtcnn_module_alone_and_runs_in_parallel(photos):
    """The min_face_size fix lives in our PNet stage instance, not in a swapped module global, so
    detections need no lock: mtcnn's own function stays in place during a detection, and detections
    from several threads give the same results as one at a time."""
    import threading

    from mtcnn.stages import stage_pnet

    original = stage_pnet.build_scale_pyramid
    detector = FaceDetector(compiled=False)
    pnet = detector.mtcnn.stages[0]
    model = pnet._model
    seen = []

    def watching(x, *a, **kw):
        seen.append(stage_pnet.build_scale_pyramid is original)
        return model(x, *a, **kw)

    pnet._model = watching
    images = [load_rgb(p) for p in photos["obama"][:3]]
    sequential = [detector.detect(rgb, min_face=m) for rgb in images for m in (40, 80)]
    assert seen and all(seen), "mtcnn's module global was replaced during a detection"

    results, errors = {}, []

    def run(i, rgb, m):
        try:
            results[i] = detector.detect(rgb, min_face=m)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, rgb, m))
               for i, (rgb, m) in enumerate((rgb, m) for rgb in images for m in (40, 80))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert not hasattr(FaceDetector, "_patch_lock")
    assert [[(d.box, d.confidence) for d in results[i]] for i in range(len(threads))] == \
        [[(d.box, d.confidence) for d in r] for r in sequential]


def test_dlib_models_are_checked_by_sha256_and_a_wrong_file_stops_the_engine(tmp_path, photos):
    """dlib's two model files (the second model of template versions 3 and 4) load from the installed package after
    their sha256 is checked; a changed byte, or a missing file, raises ModelUnavailableError before dlib
    reads it (the engine loads them with FaceNet, so it does not start)."""
    import shutil

    import numpy as np

    from idp.face import dlibnet, settings
    from idp.face.model import sha256_file
    from idp.face.reasons import ModelUnavailableError

    from .conftest import load_rgb

    base = dlibnet.model_dir()
    assert sha256_file(base / settings.DLIB_SHAPE_FILE) == settings.DLIB_SHAPE_SHA256
    assert sha256_file(base / settings.DLIB_RESNET_FILE) == settings.DLIB_RESNET_SHA256
    for name in (settings.DLIB_SHAPE_FILE, settings.DLIB_RESNET_FILE):
        shutil.copy(base / name, tmp_path / name)
    embedder = dlibnet.DlibEmbedder(tmp_path)  # the same files elsewhere load
    rgb = load_rgb(photos["putin"][0])
    from idp.face.engine import select_subject
    from idp.face.detector import FaceDetector
    box = select_subject(FaceDetector().detect(rgb), rgb.shape[1], rgb.shape[0]).box
    emb = embedder([(rgb, box)])
    assert emb.shape == (1, 128) and abs(float(np.linalg.norm(emb)) - 1) < 1e-5
    for name in (settings.DLIB_SHAPE_FILE, settings.DLIB_RESNET_FILE):
        good = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
        with pytest.raises(ModelUnavailableError, match="sha256"):
            dlibnet.load_models(tmp_path)
        (tmp_path / name).unlink()
        with pytest.raises(ModelUnavailableError, match="not found"):
            dlibnet.load_models(tmp_path)
        (tmp_path / name).write_bytes(good)
    dlibnet.load_models(tmp_path)


def test_engine_does_not_start_with_another_dlib_model(monkeypatch, tmp_path):
    from idp.face import engine as engine_mod, settings
    from idp.face.reasons import ModelUnavailableError

    monkeypatch.setattr(settings, "DLIB_RESNET_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailableError, match="sha256"):
        engine_mod.FaceEngine(tmp_path, warm_up=False)
    assert str(tmp_path.resolve()) not in engine_mod._models
