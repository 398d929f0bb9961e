"""The one decision score (idp/face/scoring.py): cohort normalisation, flip augmentation, subject choice,
the same score in sign-in, `idp faces verify` and `idp faces eval`, and old templates still verifying."""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil

import numpy as np
import pytest

from idp.face import Template, TemplateCipher, settings
from idp.face import scoring
from idp.face.detector import Detection
from idp.face.engine import select_subject

from support.fixtures import CountingEmbedder, enroll_as_version_1, enroll_as_version_2, enroll_as_version_3

from .conftest import load_rgb


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_shipped_cohorts_are_checked_and_normalised():
    """One cohort per template version, each embedded as that version embeds faces (the same identities)."""
    cohorts = {v: scoring.load_cohort(v) for v in settings.TEMPLATE_VERSIONS}
    assert set(cohorts) == {"1", "2", "3", "4"} and settings.MODEL_VERSION == "4"
    for cohort in cohorts.values():
        assert cohort.shape[1] == settings.EMBEDDING_SIZE and len(cohort) >= 1000
        assert np.allclose(np.linalg.norm(cohort, axis=1), 1, atol=1e-3)
    same = (cohorts["1"] * cohorts["2"]).sum(axis=1)
    assert len(cohorts["1"]) == len(cohorts["2"]) and same.min() > 0.8 and same.mean() < 0.999
    # version 3's FaceNet part is version 2's, version 4's is version 1's; their dlib cohort holds the same
    # faces, embedded by dlib
    assert np.array_equal(cohorts["3"], cohorts["2"]) and np.array_equal(cohorts["4"], cohorts["1"])
    dlib = scoring.load_dlib_cohort("3")
    assert dlib.shape == (len(cohorts["2"]), settings.DLIB_EMBEDDING_SIZE)
    assert np.allclose(np.linalg.norm(dlib, axis=1), 1, atol=1e-3)
    assert np.array_equal(scoring.load_dlib_cohort("4"), dlib)
    assert [settings.TEMPLATE_VERSIONS[v].dlib for v in "1234"] == [False, False, True, True]
    assert [settings.TEMPLATE_VERSIONS[v].flip for v in "1234"] == [False, True, True, False]
    assert [settings.TEMPLATE_VERSIONS[v].facenet_version for v in "1234"] == ["1", "2", "2", "1"]
    with pytest.raises(ValueError):
        scoring.load_dlib_cohort("2")
    assert scoring.Scorer().method == settings.SCORING_METHOD == scoring.ASNORM
    assert scoring.Scorer().version == settings.MODEL_VERSION


@pytest.mark.parametrize("version,field", [("1", "cohort_sha256"), ("2", "cohort_sha256"), ("3", "cohort_sha256"),
                                           ("3", "dlib_cohort_sha256"), ("4", "cohort_sha256"),
                                           ("4", "dlib_cohort_sha256")])
def test_altered_cohort_is_refused(monkeypatch, version, field):
    """The cohort moves every score: a file that is not the shipped one stops the engine from starting."""
    spec = settings.TEMPLATE_VERSIONS[version]
    monkeypatch.setitem(settings.TEMPLATE_VERSIONS, version, spec._replace(**{field: "0" * 64}))
    with pytest.raises(ValueError, match="sha256"):
        scoring.Scorer(scoring.ASNORM, version=version)


def test_cohort_norm_formula_and_symmetry():
    rng = np.random.RandomState(0)
    cohort = _unit(rng.randn(40, 512))
    scorer = scoring.Scorer(scoring.ASNORM, cohort=cohort, top_k=5)
    a, b = _unit(rng.randn(3, 512)), _unit(rng.randn(4, 512))

    def z(s, v):
        top = np.sort(cohort @ v)[-5:]
        return (s - top.mean()) / top.std()

    m = scorer.score_matrix(a, b)
    expected = np.array([[0.5 * (z(a[i] @ b[j], a[i]) + z(a[i] @ b[j], b[j])) for j in range(4)]
                         for i in range(3)])
    assert np.allclose(m, expected, atol=1e-5)
    assert np.allclose(scorer.score_matrix(b, a), m.T, atol=1e-6)
    assert np.allclose(scorer.score_pairs(a, b[:3]), np.diag(m[:, :3]), atol=1e-6)
    # A face that resembles the cohort (a look-alike of many strangers) needs a higher raw similarity.
    hub = _unit(cohort[:5].mean(axis=0))
    assert scorer.cohort_stats(hub[None])[0][0] > scorer.cohort_stats(a)[0].max()
    probe = _unit(hub + 0.8 * _unit(rng.randn(512)))
    distinct = _unit(a[0] + 0.8 * _unit(rng.randn(512)))
    assert abs(float(hub @ probe) - float(a[0] @ distinct)) < 0.1
    assert scorer.score_matrix(hub, probe)[0, 0] < scorer.score_matrix(a[0], distinct)[0, 0]
    plain = scoring.Scorer(scoring.COSINE)
    assert np.allclose(plain.score_matrix(a, b), a @ b.T, atol=1e-6)
    with pytest.raises(ValueError):
        scoring.Scorer("no-such-method")


def test_mirror_is_run_only_for_the_versions_that_flip(engine, photos, monkeypatch):
    """New templates (version 4) embed the crop alone: analyze() sends one crop per face through FaceNet
    and yields the version-1 and version-4 embeddings (the same vector). Asked for the mirror (versions 2
    and 3), the same model call embeds crop and mirror: a face and its mirror image then get the same
    flip-averaged embedding, and the crop's own embedding comes with it."""
    from idp.face.quality import crop_face

    assert engine.model_version == "4" and not engine.mirrors() and engine.mirrors("3")
    rgb = load_rgb(photos["blair"][0])
    face = crop_face(rgb, engine.analyze(rgb, embed="never").box)
    plain = engine.embedder(face[None])[0]
    counting = CountingEmbedder(engine.embedder)
    monkeypatch.setattr(engine, "embedder", counting)
    versions = engine.embed_versions(face)
    assert set(versions) == {"1", "4"} and np.array_equal(versions["4"], versions["1"])
    assert np.allclose(versions["1"][0], plain, atol=1e-5) and counting.calls == [1]
    analysis = engine.analyze(rgb)
    assert counting.calls == [1, 1] and set(analysis.embeddings) == {"1", "4"}
    assert np.allclose(analysis.embedding, plain, atol=1e-5) and analysis.embedding_for("2") is None
    e, m = engine.embed_versions(np.stack([face, face[:, ::-1]]), mirror=True)["2"]
    assert counting.calls[-1] == 4  # both faces and both mirrors, one call
    assert np.abs(e - m).max() < 1e-4 and abs(float(np.linalg.norm(e)) - 1) < 1e-5
    assert 0.9 < float(e @ plain) < 0.9999  # near the crop's embedding, not the same vector
    versions = engine.embed_versions(face, mirror=True)
    assert set(versions) == {"1", "2", "3", "4"} and np.array_equal(versions["3"], versions["2"])
    assert np.allclose(versions["1"][0], plain, atol=1e-5) and np.allclose(versions["2"][0], e, atol=1e-5)
    analysis = engine.analyze(rgb, mirror=True)
    assert counting.calls[-1] == 2
    assert np.allclose(analysis.embedding, plain, atol=1e-5)
    assert np.allclose(analysis.embedding_for("1"), plain, atol=1e-5)
    assert np.allclose(analysis.embedding_for("2"), e, atol=1e-5)


def _det(box, lm=None, conf=0.99):
    x, y, w, h = box
    lm = lm or {"left_eye": (x + .3 * w, y + .4 * h), "right_eye": (x + .7 * w, y + .4 * h),
                "nose": (x + .5 * w, y + .6 * h), "mouth_left": (x + .35 * w, y + .8 * h),
                "mouth_right": (x + .65 * w, y + .8 * h)}
    return Detection(box=box, confidence=conf, landmarks=lm)


def test_subject_choice_prefers_a_whole_plausible_face():
    whole = _det((200, 100, 150, 180))
    cut = _det((520, 80, 200, 240))  # bigger, but a third of it is past the right edge of a 640 px frame
    assert select_subject([cut, whole], 640, 480) is whole
    x, y, w, h = 100, 100, 220, 260
    upside = _det((x, y, w, h), {"left_eye": (x + .3 * w, y + .8 * h), "right_eye": (x + .7 * w, y + .8 * h),
                                 "nose": (x + .5 * w, y + .6 * h), "mouth_left": (x + .35 * w, y + .3 * h),
                                 "mouth_right": (x + .65 * w, y + .3 * h)})
    assert select_subject([upside, whole], 640, 480) is whole
    assert select_subject([cut], 640, 480) is cut  # nothing better: the largest, judged by the quality gate


def test_verify_eval_and_cli_score_with_the_same_function(engine, photos, tmp_path):
    """The evaluation's genuine and impostor scores are exactly what engine.verify returns."""
    from idp.face import evaluation

    for name in ("putin", "blair"):
        (tmp_path / name).mkdir()
        for i, p in enumerate(photos[name][:7]):
            shutil.copy(p, tmp_path / name / f"{i:02d}.jpg")
    report = evaluation.folder_protocols(engine, tmp_path, enroll_count=5, progress=False)
    enroll = report["enrollment"]
    genuine, impostor = enroll["_scores"]
    assert report["scoring"] == engine.scorer.method and enroll["fta"]["images"] == 4
    putin = engine.enroll([load_rgb(p) for p in photos["putin"][:5]], min_frames=5).template
    blair = engine.enroll([load_rgb(p) for p in photos["blair"][:5]], min_frames=5).template
    assert putin.scoring == engine.scorer.method and putin.model_version == settings.MODEL_VERSION
    same = [engine.verify(putin, [load_rgb(p)]).score for p in photos["putin"][5:7]]
    same += [engine.verify(blair, [load_rgb(p)]).score for p in photos["blair"][5:7]]
    assert np.allclose(sorted(genuine), sorted(same), atol=1e-5)
    other = [engine.verify(putin, [load_rgb(p)]).score for p in photos["blair"][5:7]]
    other += [engine.verify(blair, [load_rgb(p)]).score for p in photos["putin"][5:7]]
    assert np.allclose(sorted(impostor), sorted(other), atol=1e-5)


def _legacy_document(cipher: TemplateCipher, embeddings: np.ndarray, user_id: str) -> dict:
    """A template record exactly as the engine stored it before scoring methods were recorded (no
    "scoring" field, model_version 1)."""
    mean = _unit(embeddings.mean(axis=0)).astype("<f4")
    b64 = lambda a: base64.b64encode(np.asarray(a, "<f4").tobytes()).decode()  # noqa: E731
    plain = {"format": 1, "model_id": settings.MODEL_ID, "model_version": "1",
             "created_at": "2026-01-01T00:00:00+00:00", "dim": 512, "mean": b64(mean),
             "embeddings": [b64(e) for e in embeddings], "quality": {"frames_used": len(embeddings)}}
    nonce = os.urandom(12)
    ct = cipher._aead.encrypt(nonce, json.dumps(plain).encode(), cipher._aad(user_id, settings.MODEL_ID))
    return {"alg": cipher.ALG, "format": 1, "key_id": cipher.key_id, "model_id": settings.MODEL_ID,
            "nonce": base64.b64encode(nonce).decode(), "ciphertext": base64.b64encode(ct).decode()}


def test_template_enrolled_before_normalisation_still_verifies(engine, photos):
    from idp.face.quality import crop_face

    def v1_embedding(path):  # what the version-1 engine computed: the crop alone, no mirror
        rgb = load_rgb(path)
        return engine.embedder(crop_face(rgb, engine.analyze(rgb, embed="never").box)[None])[0]

    cipher = TemplateCipher(secrets.token_hex(32))
    doc = _legacy_document(cipher, np.stack([v1_embedding(p) for p in photos["putin"][:5]]), "u-old")
    template = cipher.decrypt(doc, "u-old")
    assert template.scoring == "cosine-v1" and template.model_version == "1"
    for path in photos["putin"][5:8]:
        res = engine.verify(template, [load_rgb(path)])
        assert res.match, res
    for path in photos["blair"][:3]:
        assert not engine.verify(template, [load_rgb(path)]).match
    # Re-saved by today's code, it keeps its history and gains nothing it did not have.
    again = Template.from_dict(template.to_dict())
    assert again.scoring == "cosine-v1" and np.array_equal(again.mean, template.mean)


def test_version_1_template_keeps_working_after_flip_is_turned_on(engine, photos):
    """A template enrolled without flip is judged as version 1: the frames' crop embeddings, the version-1
    cohort and threshold (5.65); it matches its owner and refuses another person."""
    from idp.face.quality import crop_face

    old = enroll_as_version_1(engine, [load_rgb(p) for p in photos["putin"][:5]])
    cipher = TemplateCipher(secrets.token_hex(32))
    old = cipher.decrypt(cipher.encrypt(old, "u-1"), "u-1")
    assert old.model_version == "1" and engine.model_version == "4"
    assert engine.threshold == settings.TEMPLATE_VERSIONS["4"].threshold == 4.95
    for path in photos["putin"][5:9]:
        rgb = load_rgb(path)
        res = engine.verify(old, [rgb])
        assert res.match and res.threshold == 5.65, res
        analysis = engine.analyze(rgb, mirror=True)
        crop = engine.embedder(crop_face(rgb, analysis.box)[None])[0]
        assert res.score == pytest.approx(scoring.Scorer(version="1").score(old, crop[None]), abs=1e-4)
        # not what the flip-averaged probe against the version-2 cohort would give
        assert abs(res.score - engine.scorers["2"].score(old, analysis.embedding_for("2")[None])) > 1e-3
    for path in photos["blair"][:4]:
        res = engine.verify(old, [load_rgb(path)])
        assert not res.match and res.reasons == ["below_threshold"] and res.threshold == 5.65
    # An operator's threshold is the current version's; version 1 keeps its calibrated margin above it.
    assert engine.verify(old, [load_rgb(photos["putin"][5])], threshold=6.0).threshold == pytest.approx(6.70)


def test_version_2_template_uses_the_flip_embedding_its_cohort_and_threshold(engine, photos):
    """A template enrolled before dlib was fused in (version 2, stored and read back) is judged as before:
    the flip-averaged FaceNet embedding, its cohort and 5.55, with no dlib embedding asked for."""
    new = enroll_as_version_2(engine, [load_rgb(p) for p in photos["putin"][:5]])
    cipher = TemplateCipher(secrets.token_hex(32))
    new = cipher.decrypt(cipher.encrypt(new, "u-2"), "u-2")
    assert new.model_version == "2" and new.scoring == settings.SCORING_METHOD and new.dlib_mean is None
    assert not new.incomplete
    for path in photos["putin"][5:9]:
        rgb = load_rgb(path)
        res = engine.verify(new, [rgb])
        assert res.match and res.threshold == 5.55, res
        probe = engine.analyze(rgb, mirror=True).embedding_for("2")
        assert res.score == pytest.approx(scoring.Scorer(version="2").score(new, probe[None]), abs=1e-4)
    for path in photos["blair"][:4]:
        res = engine.verify(new, [load_rgb(path)])
        assert not res.match and res.threshold == 5.55
    assert engine.verify(new, [load_rgb(photos["putin"][5])], threshold=6.0).threshold == pytest.approx(6.60)
    # A template of a version this engine cannot score is never judged with the wrong embedding.
    unknown = Template(mean=new.mean, embeddings=new.embeddings, model_version="9")
    res = engine.verify(unknown, [load_rgb(photos["putin"][5])])
    assert not res.match and res.reasons == ["reenroll_required"]


def _asnorm(t, p, cohort, k=settings.COHORT_TOP_K):
    """AS-norm written out independently of the product's Scorer."""
    def stats(v):
        top = np.sort(cohort @ v)[-k:]
        return top.mean(), top.std()
    s = float(t @ p)
    (mt, st), (mp, sp) = stats(t), stats(p)
    return 0.5 * ((s - mt) / st + (s - mp) / sp)


def _check_fused_version(engine, photos, version: str, template, threshold: float):
    """A fused template (version 3 or 4), stored and read back, is scored as the mean of the two AS-norm
    scores (its FaceNet embedding against its FaceNet cohort, dlib's against the dlib cohort): it matches
    its owner and refuses another person at ``threshold``. The probe's dlib part is the mean over the
    frames that carry one."""
    spec = settings.TEMPLATE_VERSIONS[version]
    cipher = TemplateCipher(secrets.token_hex(32))
    stored = cipher.decrypt(cipher.encrypt(template, "u-" + version), "u-" + version)
    assert stored.model_version == version and stored.dlib_mean.shape == (settings.DLIB_EMBEDDING_SIZE,)
    assert stored.dlib_embeddings.shape == (5, 128) and not stored.incomplete
    assert np.array_equal(stored.dlib_mean, template.dlib_mean) and np.array_equal(stored.mean, template.mean)
    enrolled = engine.analyze_batch([load_rgb(p) for p in photos["putin"][:5]], dlib="ok", mirror=spec.flip)
    assert np.allclose(stored.mean, _unit(np.mean([a.embedding_for(version) for a in enrolled], axis=0)), atol=1e-5)
    assert np.allclose(stored.dlib_mean, _unit(np.mean([a.dlib_embedding for a in enrolled], axis=0)), atol=1e-5)
    facenet, dlib = scoring.load_cohort(version), scoring.load_dlib_cohort(version)
    for path in photos["putin"][5:8]:
        rgb = load_rgb(path)
        res = engine.verify(stored, [rgb])
        a = engine.analyze(rgb, dlib="ok", mirror=spec.flip)
        expected = 0.5 * (_asnorm(stored.mean, a.embedding_for(version), facenet)
                          + _asnorm(stored.dlib_mean, a.dlib_embedding, dlib))
        assert res.match and res.threshold == threshold and res.score == pytest.approx(expected, abs=1e-3), res
    for path in photos["blair"][:4]:
        res = engine.verify(stored, [load_rgb(path)])
        assert not res.match and res.reasons == ["below_threshold"] and res.threshold == threshold
    # Several frames, only some with a dlib embedding (as at sign-in): FaceNet averages all, dlib its own.
    frames = engine.analyze_batch([load_rgb(p) for p in photos["putin"][5:9]], dlib="never", mirror=spec.flip)
    for f, rgb in zip(frames[:2], [load_rgb(p) for p in photos["putin"][5:7]]):
        f.dlib_embedding = engine.analyze(rgb, dlib="ok").dlib_embedding
    res = engine.verify(stored, frames)
    fn = _unit(np.mean([f.embedding_for(version) for f in frames], axis=0))
    dl = _unit(np.mean([f.dlib_embedding for f in frames[:2]], axis=0))
    expected = 0.5 * (_asnorm(stored.mean, fn, facenet) + _asnorm(stored.dlib_mean, dl, dlib))
    assert res.match and res.frames_used == 4 and res.score == pytest.approx(expected, abs=1e-3)
    return stored


def test_version_4_fuses_the_crop_embedding_with_dlib_and_survives_storage(engine, photos):
    """A new template (version 4) carries the mean of the crops' FaceNet embeddings (no mirror: version 1's
    embedding, against version 1's cohort) and dlib's mean, through encryption; fused as version 3 fuses,
    at 4.95. Its enrollment runs no mirrored crop through FaceNet."""
    counting = CountingEmbedder(engine.embedder)
    engine.embedder = counting
    try:
        result = engine.enroll([load_rgb(p) for p in photos["putin"][:5]], min_frames=5)
    finally:
        engine.embedder = counting.embedder
    assert result.ok and result.template.model_version == "4" == settings.MODEL_VERSION
    assert counting.calls == [5]  # five crops, no mirror
    stored = _check_fused_version(engine, photos, "4", result.template, 4.95)
    assert engine.verify(stored, [load_rgb(photos["putin"][5])], threshold=6.0).threshold == pytest.approx(6.0)


def test_version_3_template_stored_before_still_verifies(engine, photos):
    """A template enrolled before the mirror was dropped (version 3: crop + mirror fused with dlib) is
    judged as before: its flip-averaged embedding and cohort, dlib's, 5.00 (moved with the operator's
    threshold)."""
    template = enroll_as_version_3(engine, [load_rgb(p) for p in photos["putin"][:5]])
    stored = _check_fused_version(engine, photos, "3", template, 5.00)
    assert engine.verify(stored, [load_rgb(photos["putin"][5])], threshold=6.0).threshold == pytest.approx(6.05)


@pytest.mark.parametrize("version,gate", [("3", ("2", 5.55)), ("4", ("1", 5.65))])
def test_a_fused_version_never_decides_on_facenet_alone(engine, photos, version, gate):
    """Probe frames without any dlib embedding: no decision (second_model_missing, nothing used), even
    for the owner; a fused template that lacks its dlib part is never used (re-enrollment). The
    next-move gate's judgement (facenet_only) is its facenet_version's, on the FaceNet part (version 2's
    for version 3, version 1's for version 4)."""
    gate_version, gate_threshold = gate
    template = (enroll_as_version_3(engine, [load_rgb(p) for p in photos["putin"][:5]]) if version == "3" else
                engine.enroll([load_rgb(p) for p in photos["putin"][:5]], min_frames=5).template)
    assert template.model_version == version
    mirror = settings.TEMPLATE_VERSIONS[version].flip
    owner = engine.analyze_batch([load_rgb(p) for p in photos["putin"][5:8]], mirror=mirror)
    assert all(a.ok and a.dlib_embedding is None for a in owner)
    res = engine.verify(template, owner)
    assert not res.match and res.reasons == ["second_model_missing"] and res.frames_used == 0
    gate = engine.verify(template, owner, facenet_only=True)
    assert gate.match and gate.threshold == gate_threshold
    assert gate.score == pytest.approx(engine.scorers[gate_version].score(
        template, [a.embedding_for(gate_version) for a in owner]), abs=1e-5)
    stranger = engine.analyze_batch([load_rgb(p) for p in photos["blair"][:3]], mirror=mirror)
    assert not engine.verify(template, stranger, facenet_only=True).match
    with pytest.raises(ValueError):  # the scorer itself refuses a fused score without dlib
        engine.scorers[version].score(template, [owner[0].embedding_for(version)])
    # a fused record without its dlib part (stored by a faulty writer, or edited): fail closed
    doc = template.to_dict()
    del doc["dlib_mean"], doc["dlib_embeddings"]
    stripped = Template.from_dict(doc)
    assert stripped.incomplete and stripped.model_version == version
    res = engine.verify(stripped, [load_rgb(photos["putin"][5])])
    assert not res.match and res.reasons == ["reenroll_required"]
