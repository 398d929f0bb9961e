"""The engine on real photos: matching, rejections with reasons, quality checks, enrollment, verification."""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageFilter

from idp.face import reasons as R

from .conftest import load_rgb, to_jpeg


def _template(engine, paths):
    result = engine.enroll([load_rgb(p) for p in paths])
    assert result.ok, result.reasons
    return result.template


def test_same_person_matches_and_other_does_not(engine, photos):
    template = _template(engine, photos["putin"][:5])
    for path in photos["putin"][5:8]:
        res = engine.verify(template, [load_rgb(path)])
        assert res.match and res.score >= res.threshold and res.reasons == []
    for path in photos["blair"][:3]:
        res = engine.verify(template, [load_rgb(path)])
        assert not res.match and res.reasons == [R.BELOW_THRESHOLD]
        assert res.score < engine.threshold / 2


def test_single_photo_pairs(engine, photos):
    a, b, c = (engine.analyze(load_rgb(p), dlib="ok") for p in (photos["obama"][0], photos["obama"][1],
                                                                 photos["biden"][0]))
    score = engine.scorer.score_pairs  # the current version's: FaceNet and dlib fused

    def pair(x, y):
        return float(score(x.embedding, y.embedding, x.dlib_embedding, y.dlib_embedding)[0])
    assert pair(a, b) > engine.threshold > pair(a, c)


def test_embeddings_are_deterministic_and_normalised(engine, photos):
    rgb = load_rgb(photos["blair"][0])
    first = engine.analyze(rgb).embedding
    again = engine.analyze_batch([rgb, load_rgb(photos["blair"][1]), rgb])
    assert first.shape == (512,) and first.dtype == np.float32
    assert abs(float(np.linalg.norm(first)) - 1) < 1e-5
    assert np.abs(first - again[0].embedding).max() < 1e-5
    assert np.abs(first - again[2].embedding).max() < 1e-5


def test_analysis_fields(engine, photos):
    a = engine.analyze(load_rgb(photos["obama"][0]))
    assert a.ok and a.reasons == [] and a.faces == 1
    x, y, w, h = a.box
    assert w > 100 and h > 100
    assert set(a.landmarks) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    assert {"brightness", "sharpness", "face_ratio", "yaw", "roll"} <= set(a.quality)
    assert a.confidence > 0.95


def test_no_face(engine):
    rng = np.random.RandomState(3)
    blank = np.full((480, 640, 3), 200, np.uint8)
    noise = rng.randint(0, 255, (480, 640, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:480, 0:640]
    landscape = np.stack([xx * 0 + 120, 150 + yy * 0.1, 255 - yy * 0.3], axis=-1)  # sky over grass
    landscape[300:] = [60, 140, 50]
    for img in (blank, noise, landscape.astype(np.uint8)):
        a = engine.analyze(img)
        assert not a.ok and a.reasons == [R.NO_FACE] and a.box is None and a.embedding is None


def test_two_faces_rejected(engine, photos):
    left = Image.open(photos["putin"][0]).convert("RGB")
    right = Image.open(photos["blair"][0]).convert("RGB")
    both = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    both.paste(left, (0, 0))
    both.paste(right, (left.width, 0))
    a = engine.analyze(np.asarray(both))
    assert not a.ok and R.MULTIPLE_FACES in a.reasons and a.faces >= 2


def test_bytes_input_and_bad_bytes(engine, photos):
    a = engine.analyze(photos["obama"][0].read_bytes())
    assert a.ok
    import pytest

    with pytest.raises(R.FaceInputError) as info:
        engine.analyze(b"definitely not a picture")
    assert info.value.reason == R.UNSUPPORTED_FORMAT


def test_quality_reasons(engine, photos):
    rgb = load_rgb(photos["obama"][0])
    dark = (rgb.astype(np.float32) * 0.15).astype(np.uint8)
    assert R.TOO_DARK in engine.analyze(dark).reasons
    bright = np.clip(rgb.astype(np.float32) * 0.3 + 200, 0, 255).astype(np.uint8)
    assert R.TOO_BRIGHT in engine.analyze(bright).reasons
    lfw = load_rgb(photos["blair"][0])  # 240 px photo, face about 90 px
    assert R.BLURRY not in engine.analyze(lfw).reasons
    blurred = np.asarray(Image.fromarray(lfw).filter(ImageFilter.GaussianBlur(3)))
    assert R.BLURRY in engine.analyze(blurred).reasons
    partial = engine.analyze(load_rgb(photos["partial"]))
    assert R.FACE_CUT_OFF in partial.reasons
    # A small face in a big frame: too far from the camera.
    face = Image.fromarray(rgb).resize((rgb.shape[1] // 6, rgb.shape[0] // 6))
    canvas = Image.new("RGB", (1280, 960), (128, 128, 128))
    canvas.paste(face, (600, 400))
    small = engine.analyze(np.asarray(canvas))
    assert small.reasons == [R.FACE_TOO_SMALL] or small.reasons == [R.NO_FACE]
    for code in (R.TOO_DARK, R.TOO_BRIGHT, R.BLURRY, R.FACE_CUT_OFF, R.FACE_TOO_SMALL, R.HEAD_TURNED):
        assert R.REASON_MESSAGES[code]


def test_head_turned_from_landmarks(engine, photos):
    a = engine.analyze(load_rgb(photos["obama"][0]))
    from idp.face import quality

    turned = dict(a.quality, yaw=0.45)
    assert R.HEAD_TURNED in quality.check(turned)
    assert R.HEAD_TURNED not in quality.check(dict(a.quality, yaw=0.1))


def test_enrollment_drops_bad_frames_and_outliers(engine, photos):
    frames = [load_rgb(p) for p in photos["blair"][:7]]
    frames.append(np.full((480, 640, 3), 90, np.uint8))  # no face
    frames.append(load_rgb(photos["putin"][0]))  # someone else
    res = engine.enroll(frames)
    assert res.ok, res.reasons
    assert res.used_frames == 7
    assert res.stats["outliers"] == 1 and res.stats["frames_offered"] == 9
    t = res.template
    assert t.embeddings.shape == (7, 512) and abs(float(np.linalg.norm(t.mean)) - 1) < 1e-5
    assert t.model_id == engine.model_id and t.quality["frames_used"] == 7


def test_enrollment_refuses_mixed_people_and_too_few_frames(engine, photos):
    mixed = [load_rgb(p) for p in photos["blair"][:3] + photos["putin"][:3]]
    res = engine.enroll(mixed)
    assert not res.ok and res.template is None and res.reasons == [R.INCONSISTENT_FRAMES]
    res = engine.enroll([load_rgb(photos["blair"][0]), np.zeros((100, 100, 3), np.uint8)])
    assert not res.ok and R.NOT_ENOUGH_GOOD_FRAMES in res.reasons


def test_multi_frame_verification_and_threshold_override(engine, photos):
    template = _template(engine, photos["blair"][:5])
    frames = [load_rgb(p) for p in photos["blair"][5:8]] + [np.zeros((240, 320, 3), np.uint8)]
    res = engine.verify(template, frames)
    assert res.match and res.frames_used == 3
    assert not engine.verify(template, frames, threshold=res.score + 0.01).match
    res = engine.verify(template, [np.zeros((240, 320, 3), np.uint8)])
    assert not res.match and res.reasons[0] == R.NO_USABLE_FRAMES


def test_other_model_template_requires_reenrollment(engine, photos):
    template = _template(engine, photos["blair"][:4])
    other = dataclasses.replace(template, model_id="some-older-model")
    res = engine.verify(other, [load_rgb(photos["blair"][5])])
    assert not res.match and res.reasons == [R.REENROLL_REQUIRED] and res.frames_used == 0


def test_get_engine_is_a_singleton(engine, face_data_dir):
    from idp.face import get_engine

    assert get_engine(face_data_dir) is engine
    other = get_engine(face_data_dir, threshold=0.9)
    assert other is not engine and other.threshold == 0.9 and other.embedder is engine.embedder


def test_thread_safety(engine, photos):
    from concurrent.futures import ThreadPoolExecutor

    frames = [to_jpeg(load_rgb(p)) for p in photos["blair"][:4]]
    expected = [engine.analyze(f).embedding for f in frames]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda f: engine.analyze(f).embedding, frames * 2))
    for i, emb in enumerate(got):
        assert np.abs(emb - expected[i % 4]).max() < 1e-4


def test_loaded_engine_leaves_no_blas_thread_spinning(engine, photos):
    """With the engine loaded, numpy's BLAS works on the calling thread (settings.BLAS_THREADS): the
    cohort products of a verification leave no worker spinning afterwards. (At OpenBLAS's default of
    one thread per core, its worker burnt about 100 ms of CPU after each 0.05 ms score.)"""
    import time

    from threadpoolctl import threadpool_info

    from idp.face import settings

    template = _template(engine, photos["putin"][:5])
    analysis = engine.analyze(load_rgb(photos["putin"][5]), dlib="ok")
    probe, dlib_probe = analysis.embedding[None], analysis.dlib_embedding[None]
    engine.score(template, probe, dlib_probe)
    spent = []
    for _ in range(3):
        time.sleep(0.2)  # anything still running from earlier work settles
        c0 = time.process_time()
        engine.score(template, probe, dlib_probe)
        time.sleep(0.2)
        spent.append(time.process_time() - c0)
    assert min(spent) < 0.02, spent  # the score itself is well under 1 ms of CPU
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and set(blas) == {settings.BLAS_THREADS}


def test_thread_settings_apply_before_tensorflow_starts():
    """configure_threads (called before the models are built) sets TensorFlow's intra-op pool and numpy's
    BLAS in a fresh process; if TensorFlow already ran an operation, its pools stay as they are (a
    warning, not a failure)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from idp.face import settings

    code = """if True:
        import json, logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        import numpy, tensorflow as tf
        if sys.argv[1] == "late":
            tf.constant(1.0) + 1.0  # TensorFlow initialised first
        from idp.face.engine import configure_threads
        print(json.dumps(configure_threads()))
    """
    root = Path(__file__).resolve().parents[2]
    out = {}
    for order in ("fresh", "late"):
        res = subprocess.run([sys.executable, "-c", code, order], capture_output=True, text=True, timeout=300, cwd=root)
        assert res.returncode == 0, res.stderr[-2000:]
        out[order] = (json.loads(res.stdout.strip().splitlines()[-1]), res.stderr)
    assert out["fresh"][0] == {"blas": settings.BLAS_THREADS, "tf_intra_op": settings.TF_INTRA_OP_THREADS}
    assert "intra-op threads stay" not in out["fresh"][1]
    assert out["late"][0] == {"blas": settings.BLAS_THREADS, "tf_intra_op": 0}
    assert "intra-op threads stay" in out["late"][1]
