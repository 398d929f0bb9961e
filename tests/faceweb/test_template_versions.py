"""Templates enrolled before flip augmentation (template version 1), before dlib's ResNet was fused in
(version 2) or before the mirror was dropped (version 3) keep signing their owner in through the web
capture, judged as their version; the capture keeps each good frame's embedding under every version its
FaceNet pass yields (the mirror's versions only for a template that needs them), and dlib's embedding of
the frames it asked dlib for."""
from __future__ import annotations

import secrets

import numpy as np
import pytest

from idp import get_config, get_db
from support.fixtures import CountingEmbedder, enroll_as_version_1, enroll_as_version_2, enroll_as_version_3

from .conftest import Browser, enroll_user


def _store(app, user, template):
    from idp.face.repository import save_template
    from idp.face.template import TemplateCipher
    from idp.faceweb import notice

    db = get_db(app)
    notice.record_consent(db, user["_id"])
    save_template(db, user["_id"], template, TemplateCipher(get_config(app).template_key))


def _verify_entries(app, user):
    return list(get_db(app).audit_log.find({"event": "face.verify", "user_id": user["_id"]}).sort("_id", 1))


def _stored_versions(app, cap) -> list[list[str]]:
    """The embedding kinds each good frame of an open capture keeps (decrypted)."""
    from idp.face.template import TemplateCipher
    from idp.faceweb.capture_sessions import Captures

    db = get_db(app)
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    return [sorted(embs) for _, embs in Captures(db, TemplateCipher(get_config(app).template_key), 600).embeddings(doc)]


def test_version_1_template_signs_its_owner_in_and_refuses_another_person(app, new_user, people, engine):
    from idp.face.repository import load_template
    from idp.face.template import TemplateCipher

    user = new_user("alice")
    _store(app, user, enroll_as_version_1(engine, people["alice"][:5]))
    b = Browser(app)
    b.login("alice")
    body = b.capture("verify", people["mallory"][:3]).get_json()
    assert body["ok"] is False and body["reasons"] == ["below_threshold"], body
    body = b.capture("verify", people["alice"][5:8]).get_json()
    assert body["ok"] is True, body
    no, yes = _verify_entries(app, user)
    assert no["decision"] == "no_match" and yes["decision"] == "match"
    assert no["details"]["threshold"] == yes["details"]["threshold"] == 5.65  # version 1's calibration
    # its crop embedding needs no mirror: neither capture ran one
    assert [c["mirror"] for c in get_db(app).capture_sessions.find({"user_id": user["_id"]})] == [False, False]
    # The template is used as it is: neither replaced nor rewritten.
    kept = load_template(get_db(app), user["_id"], TemplateCipher(get_config(app).template_key))
    assert kept.model_version == "1"


def test_new_enrollment_is_version_4_without_mirror_and_signs_in(app, new_user, people, engine, monkeypatch):
    """A new template is version 4 (FaceNet's crop embedding and dlib's, no mirror): its enrollment and its
    owner's sign-in send one crop per face through FaceNet, never its mirror, and keep only the crop's
    embedding kinds; it matches its owner and refuses another person at 4.95."""
    from idp.face.repository import load_template
    from idp.face.template import TemplateCipher

    counting = CountingEmbedder(engine.embedder)
    monkeypatch.setattr(engine, "embedder", counting)
    user, _ = enroll_user(app, new_user, people["alice"])
    template = load_template(get_db(app), user["_id"], TemplateCipher(get_config(app).template_key))
    assert template.model_version == "4" and template.dlib_embeddings.shape == (5, 128)
    enrollment = get_db(app).capture_sessions.find_one({"user_id": user["_id"], "purpose": "enroll"})
    assert enrollment["good"] == enrollment["dlib_done"] == 5 and enrollment["mirror"] is False
    assert counting.calls and set(counting.calls) == {1}
    b = Browser(app)
    b.login("alice")
    del counting.calls[:]
    cap = _open_capture(b, people["alice"][5:8])
    assert get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})["mirror"] is False
    assert _stored_versions(app, cap) == [["1", "4", "dlib"]] * 3
    assert counting.calls == [1, 1, 1]  # the crop of each frame, no mirror
    assert b.finish(cap).get_json()["ok"] is True
    assert _verify_entries(app, user)[-1]["details"]["threshold"] == 4.95
    assert b.capture("verify", people["mallory"][:3]).get_json()["reasons"] == ["below_threshold"]
    assert set(counting.calls) == {1}


def test_version_3_template_stored_before_signs_in_as_before(make_app, new_user, people, engine, monkeypatch):
    """A template stored before version 4 is judged as version 3 (crop + mirror fused with dlib, 5.00): its
    owner's sign-in still runs the mirror (one FaceNet call for crop and mirror) and dlib on the first
    good frames; it matches its owner and refuses another person."""
    from idp.face import settings

    app = make_app(face_verify_frames=5)
    user = new_user("alice")
    _store(app, user, enroll_as_version_3(engine, people["alice"][:5]))
    counting = CountingEmbedder(engine.embedder)
    monkeypatch.setattr(engine, "embedder", counting)
    b = Browser(app)
    b.login("alice")
    cap = _open_capture(b, people["alice"][3:8])
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    k = settings.DLIB_SIGNIN_FRAMES
    assert doc["mirror"] is True and doc["dlib_frames"] == doc["dlib_done"] == k
    assert _stored_versions(app, cap) == [["1", "2", "3", "4", "dlib"]] * k + [["1", "2", "3", "4"]] * (5 - k)
    assert counting.calls == [2] * 5
    _owner_matches_then_another_is_refused(app, b, cap, user, people, 5.00)


def _owner_matches_then_another_is_refused(app, b, cap, user, people, threshold: float) -> None:
    """``cap`` (the owner's open capture) matches; a capture of another person is refused; both audited at
    ``threshold``."""
    assert b.finish(cap).get_json()["ok"] is True
    body = b.capture("verify", people["mallory"][:5]).get_json()
    assert body["ok"] is False and body["reasons"] == ["below_threshold"]
    no_, yes = _verify_entries(app, user)[-1], _verify_entries(app, user)[-2]
    assert yes["decision"] == "match" and no_["decision"] == "no_match"
    assert yes["details"]["threshold"] == no_["details"]["threshold"] == threshold


def _open_capture(b, images):
    cap = b.start("verify").get_json()
    for image in images:
        assert b.frame(cap, image).status_code == 200
    return cap


def test_sign_in_runs_dlib_on_the_first_good_frames_only(make_app, new_user, people):
    """dlib costs as much as a whole frame: a sign-in capture runs it on its first DLIB_SIGNIN_FRAMES good
    frames (kept encrypted with them) and no other; the finish fuses their mean with all frames' FaceNet."""
    from idp.face import settings
    from idp.faceweb.capture import _analyses
    from idp.faceweb.capture_sessions import DLIB, Captures
    from idp.face.template import TemplateCipher

    app = make_app(face_verify_frames=5)
    user, _ = enroll_user(app, new_user, people["alice"])
    b = Browser(app)
    b.login("alice")
    cap = _open_capture(b, people["alice"][3:8])
    db = get_db(app)
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    k = settings.DLIB_SIGNIN_FRAMES
    assert 2 <= k < 5 and doc["good"] == 5 and doc["dlib_frames"] == k and doc["dlib_done"] == k
    frames = Captures(db, TemplateCipher(get_config(app).template_key), 600).embeddings(doc)
    assert [DLIB in embs for _, embs in frames] == [True] * k + [False] * (5 - k)
    assert all(a.dlib_embedding is not None for a in _analyses(frames)[:k])
    assert b.finish(cap).get_json()["ok"] is True
    assert _verify_entries(app, user)[-1]["details"]["frames_used"] == 5


def test_version_2_template_signs_in_as_before_without_dlib(make_app, new_user, people, engine):
    """A template stored before version 3 is judged as version 2 (5.55, FaceNet alone), and its sign-in
    does not pay for dlib."""
    app = make_app(face_verify_frames=5)
    user = new_user("alice")
    _store(app, user, enroll_as_version_2(engine, people["alice"][:5]))
    b = Browser(app)
    b.login("alice")
    cap = _open_capture(b, people["alice"][3:8])
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["good"] == 5 and doc["dlib_frames"] == 0 and doc["dlib_done"] == 0 and doc["mirror"] is True
    _owner_matches_then_another_is_refused(app, b, cap, user, people, 5.55)


def test_fused_template_capture_without_dlib_frames_decides_nothing(app, new_user, people, db):
    """A version-4 template (fused, as version 3) against a capture none of whose frames dlib embedded:
    no decision and no counted failure, never a FaceNet-only match."""
    user, _ = enroll_user(app, new_user, people["alice"])
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    get_db(app).capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"dlib_frames": 0}})
    for image in people["alice"][5:8]:
        assert b.frame(cap, image).status_code == 200
    body = b.finish(cap).get_json()
    assert body["ok"] is False and body["reasons"] == ["second_model_missing"], body
    entry = _verify_entries(app, user)[-1]
    from idp.faceweb.lockout import Limits, lock_state
    assert entry["decision"] == "incomplete"
    assert lock_state(get_db(app), user["_id"], Limits.from_config(get_config(app))).failures == 0


def test_capture_frames_hold_every_version_and_frames_stored_before_still_read(db, engine, people):
    """A good frame is kept (encrypted) under every template version its FaceNet pass yielded; a frame
    stored before versions were recorded reads as its one version-1 embedding. A template is judged only
    on frames that have an embedding of its own version, or of its facenet_version (the same vector:
    version 4's FaceNet embedding is version 1's)."""
    from idp.face import Template, TemplateCipher
    from idp.faceweb.capture import _analyses
    from idp.faceweb.capture_sessions import Captures

    cipher = TemplateCipher(secrets.token_hex(32))
    captures = Captures(db, cipher, 600)
    doc = captures.create("u-1", "verify", 3, dlib_frames=3)
    analysis = engine.analyze(people["alice"][5], dlib="ok", mirror=True)
    assert analysis.ok and analysis.dlib_embedding is not None
    captures.add_frame(doc, analysis)
    stored = db.capture_sessions.find_one({"_id": doc["_id"]})
    assert "embeddings" not in str(stored["frames"][0]) and stored["frames"][0]["emb"]["ciphertext"]
    # a frame as the capture stored it before: one embedding, sealed as a version-1 "template"
    before = Template.from_embeddings([analysis.embedding_for("1")], model_version="1")
    db.capture_sessions.update_one({"_id": doc["_id"]}, {"$push": {"frames": {
        "ok": True, "reasons": [], "emb": cipher.encrypt(before, captures._aad(doc))}}})
    frames = captures.embeddings(db.capture_sessions.find_one({"_id": doc["_id"]}))
    assert [sorted(embs) for _, embs in frames] == [["1", "2", "3", "4", "dlib"], ["1"]]
    assert np.allclose(frames[0][1]["1"], analysis.embedding_for("1"), atol=1e-6)
    assert np.allclose(frames[0][1]["2"], analysis.embedding_for("2"), atol=1e-6)
    assert np.allclose(frames[1][1]["1"], analysis.embedding_for("1"), atol=1e-6)
    assert np.allclose(frames[0][1]["dlib"], analysis.dlib_embedding, atol=1e-6)

    analyses = _analyses(frames)
    old = enroll_as_version_1(engine, people["alice"][:5])
    new = engine.enroll(people["alice"][:5], min_frames=5).template
    res_old, res_new = engine.verify(old, analyses), engine.verify(new, analyses)
    assert res_old.match and res_old.frames_used == 2
    assert res_new.match and res_new.frames_used == 2  # (its dlib part: the first frame's alone)
    assert analyses[1].embedding_for("4") is analyses[1].embedding_for("1") is not None
    assert analyses[1].embedding_for("2") is None and analyses[1].embedding_for("3") is None


def test_owner_of_an_older_template_is_invited_to_enroll_again(app, new_user, people, engine, mongo_uri,
                                                                face_data_dir):
    """A version-1 template keeps working, but only a new enrollment moves it to the current version (the
    photos are not kept): its owner's face page says so; an operator can count templates per version.
    The owner of a current template sees no such advice."""
    from click.testing import CliRunner

    from idp.cli import cli

    old = new_user("alice")
    _store(app, old, enroll_as_version_1(engine, people["alice"][:5]))
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"] is True
    page = b.get("/account/face").get_data(as_text=True)
    assert 'id="reenroll-advice"' in page and "earlier version" in page
    carol = new_user("carol")
    _store(app, carol, enroll_as_version_3(engine, people["mallory"][:5]))
    b = Browser(app)
    b.login("carol")
    assert b.capture("verify", people["mallory"][5:8]).get_json()["ok"] is True
    assert 'id="reenroll-advice"' in b.get("/account/face").get_data(as_text=True)
    enroll_user(app, new_user, people["mallory"], username="bob")
    b = Browser(app)
    b.login("bob")
    assert b.capture("verify", people["mallory"][5:8]).get_json()["ok"] is True
    assert 'id="reenroll-advice"' not in b.get("/account/face").get_data(as_text=True)

    config = get_config(app)
    env = {"MONGODB_URI": mongo_uri, "IDP_DB_NAME": get_db(app).name, "IDP_DATA_DIR": str(face_data_dir),
           "IDP_TEMPLATE_KEY": config.template_key, "IDP_SECRET_KEY": config.secret_key}
    r = CliRunner().invoke(cli, ["faces", "versions"], env=env)
    assert r.exit_code == 0, r.output
    assert "version 1: 1 template(s) (older" in r.output and "version 3: 1 template(s) (older" in r.output
    assert "version 4: 1 template(s) (current)" in r.output


def test_only_an_older_version_the_engine_still_scores_is_an_invitation():
    """A template of a version the engine does not know is not "older" (it fails closed as a re-enrollment
    elsewhere); one that records no version is version 1."""
    from idp.face.repository import is_older_version
    assert is_older_version({"model_version": "1"}) and is_older_version({})
    assert is_older_version({"model_version": "2"}) and is_older_version({"model_version": "3"})
    assert not is_older_version({"model_version": "4"}) and not is_older_version({"model_version": "9"})


@pytest.mark.parametrize("version", ["3", "4"])
def test_fused_record_without_its_dlib_part_is_unusable(app, new_user, people, engine, version):
    """A stored version-3 or version-4 template that lacks its dlib part (a faulty writer, an edited record
    sealed with the right key) is never scored on FaceNet alone: the face step reports it unusable (fail
    closed)."""
    from idp.face import Template
    from idp.faceweb.integrity import MODEL_MISMATCH, template_problem
    from idp.face.template import TemplateCipher

    full = (enroll_as_version_3(engine, people["alice"][:5]) if version == "3"
            else engine.enroll(people["alice"][:5], min_frames=5).template)
    assert full.model_version == version
    doc = full.to_dict()
    del doc["dlib_mean"], doc["dlib_embeddings"]
    user = new_user("alice")
    _store(app, user, Template.from_dict(doc))
    cipher = TemplateCipher(get_config(app).template_key)
    assert template_problem(get_db(app), user["_id"], cipher) == MODEL_MISMATCH
    _store(app, user, full)
    assert template_problem(get_db(app), user["_id"], cipher) is None
