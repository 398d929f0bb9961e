"""Fixtures several test folders share; a conftest imports the ones its tests use (an imported autouse
fixture applies to that folder only)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest


@pytest.fixture
def away_from_a_rate_window_edge():
    """The rate limits count in fixed windows (``RateLimit``: the face limits' 600 s, the mail limits' and the
    audit caps' 3600 s, all ending on multiples of 600 s since the epoch): a test that crossed an edge would
    start a fresh count halfway and see one more event allowed than the limit. A test starting within 20 s
    of an edge waits for it to pass."""
    import time
    left = 600 - time.time() % 600
    if left < 20:
        time.sleep(left + 0.2)


@pytest.fixture(autouse=True)
def cheap_password_hashing():
    """Argon2 with small parameters: the password step stays real, the tests stay fast."""
    from idp.accounts import passwords
    old = passwords.set_hasher(passwords.make_hasher(time_cost=1, memory_cost=8192, parallelism=1))
    yield
    passwords.set_hasher(old)


def model_cache(tmp_path_factory) -> Path:
    """Where the engine's converted FaceNet weights are kept between test runs (the conversion from the frozen
    graph takes ~30 s). ``DEEPAUTH_TEST_MODEL_CACHE`` or a folder beside pytest's numbered temp dirs, under a
    key made of the frozen graph's sha256 and the converter's source: a changed graph or converter converts
    afresh. Parallel test workers share it (see ``link_model_cache``). The engine checks the weights against
    their sha256 sidecar on every load, and tests/face/test_models.py compares the loaded model with the
    frozen graph itself."""
    from idp.face import model, settings

    key = hashlib.sha256(settings.GRAPH_SHA256.encode() + Path(model.__file__).read_bytes()).hexdigest()[:16]
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's temp dir is one level deeper: <run>/popen-gwN
        base = base.parent
    root = Path(os.environ.get("DEEPAUTH_TEST_MODEL_CACHE") or base.parent / "deepauth-face-models")
    cache = root / key
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def link_model_cache(data_dir: Path, tmp_path_factory) -> Path:
    """Point ``<data_dir>/models`` (where the engine keeps its converted weights) at the shared cache, and fill
    the cache if it is empty: under a file lock, so of several test workers starting on a clean machine one
    converts and the others wait for its result instead of converting too."""
    import fcntl

    from idp.face import model

    cache = model_cache(tmp_path_factory)
    (Path(data_dir) / "models").symlink_to(cache, target_is_directory=True)
    with open(cache / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        model.ensure_cached_weights(Path(data_dir))
    return Path(data_dir)


def enroll_as_version_1(engine, images):
    """A face template exactly as the engine made it before flip augmentation (template version 1: the
    crop's embedding alone), from ``images`` (arrays or JPEG bytes), every one of which must be good."""
    return enroll_as_version(engine, images, "1")


def enroll_as_version_2(engine, images):
    """A face template exactly as the engine made it before dlib's ResNet was fused in (template version 2:
    FaceNet's crop + mirror embedding, no dlib part)."""
    return enroll_as_version(engine, images, "2")


def enroll_as_version_3(engine, images):
    """A face template exactly as the engine made it before the mirror was dropped (template version 3:
    FaceNet's crop + mirror embedding fused with dlib's ResNet)."""
    return enroll_as_version(engine, images, "3")


def enroll_as_version(engine, images, version: str):
    """A template as the engine enrolled under ``version`` (its embedding, no part of a later version)."""
    from idp.face import settings

    engine.model_version = version  # (the mirror and dlib follow the version: settings.TEMPLATE_VERSIONS)
    try:
        result = engine.enroll(list(images), min_frames=len(images))
    finally:
        engine.model_version = settings.MODEL_VERSION
    assert result.ok and result.template.model_version == version, result.reasons
    assert result.template.dlib_mean is None or settings.TEMPLATE_VERSIONS[version].dlib
    return result.template


class CountingEmbedder:
    """The engine's FaceNet, passed through, recording how many crops each call embeds."""

    def __init__(self, embedder):
        self.embedder, self.calls = embedder, []

    def __call__(self, crops):
        self.calls.append(len(crops))
        return self.embedder(crops)

    def __getattr__(self, name):
        return getattr(self.embedder, name)
