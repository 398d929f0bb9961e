"""The MiniFASNet port: shipped weights and their hash (fail closed), the torch-free reader refuses
anything but tensors, upstream's crop geometry (also at the frame borders), and the labels upstream
gives its own sample pictures (real model, real detector)."""
import hashlib
import io
import pickle

import numpy as np
import pytest

from idp.liveness import antispoof as A


@pytest.fixture(scope="module")
def model():
    return A.AntiSpoof()


def test_shipped_weights_have_the_pinned_hash_and_their_notice():
    assert hashlib.sha256(A.MODEL_PATH.read_bytes()).hexdigest() == A.MODEL_SHA256
    notice = (A.MODEL_PATH.parent / "NOTICE").read_text()
    assert "minifasnet.npz" in notice and "Apache License, Version 2.0" in notice
    for sha in (A.MODEL_SHA256, *A.UPSTREAM_SHA256.values()):
        assert sha in notice
    assert "Apache License" in (A.MODEL_PATH.parent / "LICENSE-minifasnet.txt").read_text()


def test_tampered_or_missing_weights_are_refused(tmp_path):
    data = bytearray(A.MODEL_PATH.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    bad = tmp_path / "minifasnet.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(A.AntiSpoofModelError, match="sha256"):
        A.AntiSpoof(bad)
    with pytest.raises(A.AntiSpoofModelError, match="not found"):
        A.AntiSpoof(tmp_path / "missing.npz")


def test_weights_that_do_not_fit_the_network_are_refused(tmp_path):
    with np.load(A.MODEL_PATH) as z:
        arrays = {k: z[k] for k in z.files if not k.endswith("prob.weight")}
    path = tmp_path / "partial.npz"
    np.savez(path, **arrays)
    with pytest.raises(A.AntiSpoofModelError, match="do not fit"):
        A.AntiSpoof(path, hashlib.sha256(path.read_bytes()).hexdigest())


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_torch_file_reader_runs_no_code_from_the_file(tmp_path):
    path = tmp_path / "evil.pth"
    # legacy torch.save layout: magic, protocol, system info, then the object
    path.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
                     + pickle.dumps({"little_endian": True}, protocol=2) + pickle.dumps({"w": _Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        A.read_torch_state_dict(path)


def test_torch_file_reader_reads_a_legacy_state_dict(tmp_path):
    # A hand-made legacy torch.save file: one 2x3 float tensor with a transposed stride.
    class _Ref:  # pickles as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
        def __reduce__(self):
            return (_global("torch._utils", "_rebuild_tensor_v2"), ("PID", 1, (2, 3), (1, 2), False, {}))

    buf = io.BytesIO()
    for head in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", _global("torch", "FloatStorage"), "k0", "cpu", 7, None) if obj == "PID" else None

    import collections
    P(buf, protocol=2).dump(collections.OrderedDict([("module.w", _Ref())]))
    pickle.dump(["k0"], buf, protocol=2)
    buf.write(np.int64(7).tobytes() + np.arange(7, dtype="<f4").tobytes())
    path = tmp_path / "small.pth"
    path.write_bytes(buf.getvalue())
    sd = A.read_torch_state_dict(path)
    assert list(sd) == ["w"]
    assert np.array_equal(sd["w"], np.arange(1, 7, dtype=np.float32).reshape(3, 2).T)


def _global(module, name):
    """An object that pickles as the global ``module.name`` (without importing it)."""
    import sys
    import types

    mod = sys.modules.get(module) or types.ModuleType(module)
    sys.modules.setdefault(module, mod)
    if module == "torch._utils":
        sys.modules.setdefault("torch", types.ModuleType("torch"))
    fn = type(name, (), {"__module__": module, "__qualname__": name})
    setattr(mod, name, fn)
    return fn


def test_crop_box_is_upstreams_geometry():
    # centred: 2.7 x a 100 px box around its centre
    assert A.crop_box(640, 480, (270, 190, 100, 100), 2.7) == (185, 105, 455, 375)
    # bottom-right corner: shifted inside the frame, size kept
    assert A.crop_box(640, 480, (600, 400, 100, 100), 2.7) == (369, 209, 639, 479)
    # top-left, partly outside
    assert A.crop_box(640, 480, (-30, -20, 100, 100), 2.7) == (0, 0, 270, 270)
    # a box too large for 4x: the scale is reduced to what fits the frame's height
    assert A.crop_box(640, 480, (200, 100, 200, 300), 4.0) == (140, 0, 459, 479)


@pytest.mark.parametrize("box", [(0, 0, 40, 40), (620, 460, 40, 40), (-50, -50, 80, 80), (600, -30, 100, 520),
                                 (0, 0, 640, 480), (-200, 100, 1200, 900), (5000, 5000, 10, 10), (10, 10, 0, 0)])
def test_crops_at_the_frame_borders_do_not_fail(model, box):
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for x in model.inputs(rgb, box):
        assert x.shape == (80, 80, 3) and x.dtype == np.uint8
    assert 0.0 <= model.score(rgb, box) <= 1.0
    tiny = rgb[:3, :2]
    assert 0.0 <= model.score(tiny, box) <= 1.0


def test_resize_is_opencvs_bilinear_and_crop_is_bgr():
    img = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2) * 10
    out = A.resize_linear(img, 2, 2)[..., 0]
    assert out.tolist() == [[25, 45], [105, 125]]  # halving = mean of each 2x2 block (half-pixel centres)
    up = A.resize_linear(img[:2, :2], 4, 4)[..., 0]
    assert up[0].tolist() == [0, 3, 8, 10]  # edge pixels clamped
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[..., 0] = 200  # red
    assert A.crop(rgb, (30, 30, 20, 20), 2.7)[40, 40].tolist() == [0, 0, 200]


def test_numpy_and_tensorflow_graphs_agree(model):
    ref = A.AntiSpoof(backend="numpy")
    x = np.random.default_rng(1).uniform(0, 255, (3, 80, 80, 3)).astype(np.float32)
    for (_, a), (_, b) in zip(ref.nets, model.nets):
        assert np.allclose(a.logits(x, "numpy"), b.logits(x, model.backend), atol=1e-3)


def test_upstream_sample_labels(faces_dir, model):
    """Upstream's own sample pictures: its two attacks (a print, a tablet) are not class 1, its two
    bona fide pictures are. Faces found by the product's detector (upstream uses its own RetinaFace)."""
    pytest.importorskip("mtcnn")
    from PIL import Image, ImageOps

    from idp.face.detector import FaceDetector

    det = FaceDetector()
    folder = faces_dir / "spoof_samples_minivision"
    files = sorted(folder.glob("*/*.jpg"))
    assert len(files) == 4
    for path in files:
        # OpenCV's imread (upstream) applies the EXIF orientation; so must we.
        rgb = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        faces = det.detect(rgb)
        assert faces, path
        p = model.probabilities(rgb, [faces[0].box])[0]
        assert np.isclose(p.sum(), 1.0, atol=1e-4)
        assert (int(np.argmax(p)) == A.REAL_CLASS) == (path.parent.name == "live"), (path.name, p)


def test_wheel_package_data_carries_the_weights_and_their_notice():
    import fnmatch
    import tomllib

    root = A.MODEL_PATH.parents[3]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["idp"]
    for name in ("minifasnet.npz", "NOTICE", "LICENSE-minifasnet.txt"):
        rel = f"liveness/models/{name}"
        assert any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p.split("/")[-1]) and p.startswith("**")
                   for p in patterns), rel


# --- the passive check in the liveness decision ------------------------------------------------

def _turn_burst(passive):
    import dataclasses

    from idp.liveness.synthetic import head_burst, ramp

    burst = head_burst(seed=0, yaw=ramp(25.0))
    return [dataclasses.replace(o, passive=p) for o, p in zip(burst, passive)]


def test_passive_score_below_the_threshold_refuses_a_performed_turn():
    from idp.liveness import LivenessSettings, assess, reason_message

    on = LivenessSettings(min_passive_score=0.1)
    n = len(_turn_burst([None] * 100))
    assert assess(_turn_burst([0.0] * n), "turn_left").passed  # off unless the caller turns it on
    assert assess(_turn_burst([0.9] * n), "turn_left", on).passed
    low = assess(_turn_burst([0.02] * n), "turn_left", on)
    assert not low.passed and low.reasons == ["passive_spoof"] and low.scores["passive_score"] == 0.02
    assert "photo or a screen" in reason_message("passive_spoof") and "good light" in reason_message("passive_spoof")
    # the median over every face frame decides: a few bad frames do not refuse a burst ...
    assert assess(_turn_burst([0.02] * 5 + [0.9] * (n - 5)), "turn_left", on).passed
    # ... and a live face in the first frames does not carry a print or a screen shown after them
    assert not assess(_turn_burst([0.9] * 5 + [0.02] * (n - 5)), "turn_left", on).passed
    # with the check on, an unscored or non-finite face frame counts as 0 (fail closed)
    assert not assess(_turn_burst([None] * n), "turn_left", on).passed
    assert not assess(_turn_burst([float("nan")] * n), "turn_left", on).passed


def test_passive_score_is_the_median_with_unscored_frames_as_zero():
    from idp.liveness.core import passive_score

    assert passive_score([0.9, None, float("nan"), 0.8, 0.7]) == 0.7  # median of 0.9, 0, 0, 0.8, 0.7
    assert passive_score([0.2, 0.4]) == pytest.approx(0.3)
    assert np.isnan(passive_score([]))  # no face frame: no score (check_passive then does not judge)


def test_passive_threshold_setting_is_a_probability():
    from idp.config import Config
    from idp.liveness import LivenessSettings

    assert Config.from_env({}).liveness_passive_min_score == 0.1
    assert LivenessSettings().min_passive_score == 0.0  # the caller that scores frames turns it on
    assert Config.from_env({"IDP_LIVENESS_PASSIVE_MIN_SCORE": "0"}).liveness_passive_min_score == 0.0
    for bad in ("1.5", "-0.1", "nan"):
        with pytest.raises(SystemExit, match="IDP_LIVENESS_PASSIVE_MIN_SCORE"):
            Config.from_env({"IDP_LIVENESS_PASSIVE_MIN_SCORE": bad})


def test_observation_carries_the_passive_score(model):
    from idp.liveness import observation_from_analysis

    class Face:
        box = (250.0, 150.0, 140.0, 170.0)
        landmarks = {"left_eye": (290, 210), "right_eye": (350, 210), "nose": (320, 250),
                     "mouth_left": (295, 285), "mouth_right": (345, 285)}

    rgb = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    obs = observation_from_analysis(Face(), 0.0, 640, 480, rgb, landmarker=lambda *a: type("D", (), {"points": None})(),
                                    antispoof=model)
    assert obs.passive == pytest.approx(model.score(rgb, Face.box))
    assert observation_from_analysis(Face(), 0.0, 640, 480, rgb, landmarker=lambda *a: type(
        "D", (), {"points": None})()).passive is None


def test_tensor_views_outside_their_storage_are_refused():
    """A crafted file cannot make the reader view memory outside a tensor's storage (negative strides or
    sizes, offsets past the end)."""
    import numpy as np

    storages = {"0": np.arange(10, dtype=np.float32)}
    ok = A._TensorRef(("0", np.float32), 2, (2, 3), (3, 1))
    assert ok.materialise(storages).tolist() == [[2, 3, 4], [5, 6, 7]]
    for offset, size, stride in ((0, (3,), (-100000,)), (5, (-2,), (1,)), (8, (3,), (1,)), (-1, (2,), (1,))):
        with pytest.raises(A.AntiSpoofModelError):
            A._TensorRef(("0", np.float32), offset, size, stride).materialise(storages)
