"""Templates enrolled before flip augmentation (template version 1) keep signing their owner in through the
web capture, judged as version 1; the capture keeps each good frame's embedding under every version."""
from __future__ import annotations

import secrets

import numpy as np

from idp import get_config, get_db
from support.fixtures import enroll_as_version_1

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
    # The template is used as it is: neither replaced nor rewritten.
    kept = load_template(get_db(app), user["_id"], TemplateCipher(get_config(app).template_key))
    assert kept.model_version == "1"


def test_new_enrollment_is_version_2_and_signs_in(app, new_user, people):
    from idp.face.repository import load_template
    from idp.face.template import TemplateCipher

    user, _ = enroll_user(app, new_user, people["alice"])
    assert load_template(get_db(app), user["_id"], TemplateCipher(get_config(app).template_key)).model_version == "2"
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"] is True
    assert _verify_entries(app, user)[-1]["details"]["threshold"] == 5.55


def test_capture_frames_hold_every_version_and_frames_stored_before_still_read(db, engine, people):
    """A good frame is kept (encrypted) under every template version; a frame stored before versions were
    recorded reads as its one version-1 embedding. A template is judged only on frames that have an
    embedding of its own version."""
    from idp.face import Template, TemplateCipher
    from idp.faceweb.capture import _analyses
    from idp.faceweb.capture_sessions import Captures

    cipher = TemplateCipher(secrets.token_hex(32))
    captures = Captures(db, cipher, 600)
    doc = captures.create("u-1", "verify", 3)
    analysis = engine.analyze(people["alice"][5])
    assert analysis.ok
    captures.add_frame(doc, analysis)
    stored = db.capture_sessions.find_one({"_id": doc["_id"]})
    assert "embeddings" not in str(stored["frames"][0]) and stored["frames"][0]["emb"]["ciphertext"]
    # a frame as the capture stored it before: one embedding, sealed as a version-1 "template"
    before = Template.from_embeddings([analysis.embedding_for("1")], model_version="1")
    db.capture_sessions.update_one({"_id": doc["_id"]}, {"$push": {"frames": {
        "ok": True, "reasons": [], "emb": cipher.encrypt(before, captures._aad(doc))}}})
    frames = captures.embeddings(db.capture_sessions.find_one({"_id": doc["_id"]}))
    assert [sorted(embs) for _, embs in frames] == [["1", "2"], ["1"]]
    assert np.allclose(frames[0][1]["1"], analysis.embedding_for("1"), atol=1e-6)
    assert np.allclose(frames[0][1]["2"], analysis.embedding_for("2"), atol=1e-6)
    assert np.allclose(frames[1][1]["1"], analysis.embedding_for("1"), atol=1e-6)

    analyses = _analyses(frames)
    old = enroll_as_version_1(engine, people["alice"][:5])
    new = engine.enroll(people["alice"][:5], min_frames=5).template
    res_old, res_new = engine.verify(old, analyses), engine.verify(new, analyses)
    assert res_old.match and res_old.frames_used == 2
    assert res_new.match and res_new.frames_used == 1


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
    assert "version 1: 1 template(s) (older" in r.output and "version 2: 1 template(s) (current)" in r.output


def test_only_an_older_version_the_engine_still_scores_is_an_invitation():
    """A template of a version the engine does not know is not "older" (it fails closed as a re-enrollment
    elsewhere); one that records no version is version 1."""
    from idp.face.repository import is_older_version
    assert is_older_version({"model_version": "1"}) and is_older_version({})
    assert not is_older_version({"model_version": "2"}) and not is_older_version({"model_version": "9"})
