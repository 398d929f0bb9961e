"""A face template that fails authentication (wrong or rotated key, tampering) or comes from another model
is never deleted and never replaced on the password alone: the face step fails closed."""
from __future__ import annotations

import base64
import logging

import pytest

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser


def _tamper(db, uid):
    doc = db.face_templates.find_one({"_id": uid})
    ct = bytearray(base64.b64decode(doc["ciphertext"]))
    ct[10] ^= 1
    db.face_templates.update_one({"_id": uid}, {"$set": {"ciphertext": base64.b64encode(bytes(ct)).decode()}})
    return doc


@pytest.mark.parametrize("damage", ["tampered", "other_model"])
def test_unreadable_template_fails_closed_and_is_kept(app, enrolled, people, caplog, damage):
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    if damage == "tampered":
        _tamper(db, uid)
    else:  # re-encrypt under another model id (authentic, but from another model)
        from idp.face.repository import load_template, save_template
        from idp.faceweb.views import _cipher
        with app.app_context():
            t = load_template(db, uid, _cipher())
            t.model_id = "some-older-model"
            save_template(db, uid, t, _cipher())
    before = db.face_templates.find_one({"_id": uid})
    b = Browser(app)
    b.login("alice")
    caplog.set_level(logging.ERROR, logger="idp.faceweb")
    page = b.get("/face/verify")
    assert page.status_code == 200 and 'id="template-unusable"' in page.text
    assert "recovery code" in page.text and "administrator" in page.text and 'id="start-camera"' not in page.text
    # No password-only enrollment, no capture.
    assert b.get("/face/enroll").status_code == 302
    r = b.start("enroll")
    assert r.status_code == 403
    r = b.start("verify")
    assert r.status_code == 403 and r.get_json()["error"] == "template_unusable"
    assert b.get("/account").headers["Location"].endswith("/face/verify")
    # Kept as it was; an error line (no biometric data) and an audit entry.
    assert db.face_templates.find_one({"_id": uid}) == before
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "idp.faceweb"]
    assert errors and all("ciphertext" not in r.getMessage() for r in errors)
    entry = db.audit_log.find_one({"event": "face.template_unusable", "user_id": uid})
    assert entry and entry["decision"] == ("tampered" if damage == "tampered" else "model_mismatch")


def test_unusable_template_reports_store_a_few_per_hour(app, enrolled):
    """Each view of the face step reports an unusable template again; the audit log (no TTL) keeps the first
    REPEATS_STORED per user, problem and hour, then one marked ``cap_reached``; every one is counted."""
    from idp import audit

    from .test_audit_log_growth import _capped_to_a_few, _delta, _scrape, _window
    user, _ = enrolled
    db = get_db(app)
    _tamper(db, user["_id"])
    b = Browser(app)
    b.login("alice")
    before, since = _scrape(app), _window()
    for _ in range(20):
        assert 'id="template-unusable"' in b.get("/face/verify").text
    stored = _capped_to_a_few(db, {"event": audit.FACE_TEMPLATE_UNUSABLE, "user_id": user["_id"]}, since)
    counted = _delta(before, _scrape(app), audit.FACE_TEMPLATE_UNUSABLE)
    assert counted["stored"] == stored and counted["stored"] + counted["capped"] >= 20, counted


def test_start_up_refuses_a_template_key_that_cannot_decrypt_the_templates(make_app, enrolled):
    from idp.faceweb.integrity import TemplateKeyError
    with pytest.raises(TemplateKeyError) as exc:
        make_app(template_key="11" * 32)
    message = str(exc.value)
    assert "IDP_TEMPLATE_KEY" in message and "\n" not in message
    # The right key still starts.
    assert make_app() is not None


def test_serve_exits_with_one_line_when_the_template_key_is_wrong(make_app, enrolled, mongo_uri, face_data_dir):
    from idp.serving import prepare_database
    app = make_app()
    config = app.config["IDP"]
    import dataclasses
    wrong = dataclasses.replace(config, template_key="22" * 32)
    with pytest.raises(SystemExit) as exc:
        prepare_database(wrong)
    text = str(exc.value.code)
    assert text.startswith("refusing to start:") and "IDP_TEMPLATE_KEY" in text and "\n" not in text


def test_mark_reenroll_command_marks_other_models_and_fails_the_face_step_closed(app, enrolled, mongo_uri, db,
                                                                                face_data_dir, monkeypatch):
    from click.testing import CliRunner

    from idp.cli import cli
    user, _ = enrolled
    uid = user["_id"]
    config = app.config["IDP"]
    env = {"MONGODB_URI": mongo_uri, "IDP_DB_NAME": db.name, "IDP_DATA_DIR": str(face_data_dir),
           "IDP_TEMPLATE_KEY": config.template_key, "IDP_SECRET_KEY": config.secret_key}
    runner = CliRunner()
    r = runner.invoke(cli, ["faces", "mark-reenroll"], env=env)  # every template is from today's model
    assert r.exit_code == 0 and "marked 0" in r.output, r.output
    r = runner.invoke(cli, ["faces", "mark-reenroll", "--all"], env=env)
    assert r.exit_code == 0 and "marked 1" in r.output, r.output
    assert db.face_status.find_one({"_id": uid})["reenroll_required"]["reason"] == "marked"
    assert db.face_templates.count_documents({"_id": uid}) == 1
    b = Browser(app)
    b.login("alice")
    page = b.get("/face/verify")
    assert 'id="template-unusable"' in page.text and 'id="start-camera"' not in page.text
    assert b.start("enroll").status_code == 403
    assert db.audit_log.find_one({"event": "face.reenroll_marked", "user_id": uid})


def _one_bit_changed(module, tmp_path, monkeypatch) -> None:
    """Point ``module.MODEL_PATH`` at a copy of its model file with one bit changed."""
    bad = tmp_path / module.MODEL_PATH.name
    data = module.MODEL_PATH.read_bytes()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(module, "MODEL_PATH", bad)


def test_an_altered_landmark_model_stops_start_up(make_app, tmp_path, monkeypatch):
    """Liveness was measured with one landmark model: a different file must stop the server at start-up (one
    clear error), not fail each capture later or decide liveness with another model."""
    import pytest

    from idp.liveness import landmarks
    _one_bit_changed(landmarks, tmp_path, monkeypatch)
    with pytest.raises(landmarks.LandmarkModelError, match="sha256"):
        make_app(liveness_enabled=True)


def test_altered_anti_spoofing_weights_stop_start_up_when_the_passive_check_is_on(make_app, tmp_path, monkeypatch):
    """The passive check was measured with one set of MiniFASNet weights: with it on, a different file stops
    the server at start-up (one clear error); with it off, the file is not needed."""
    import pytest

    from idp.liveness import antispoof
    _one_bit_changed(antispoof, tmp_path, monkeypatch)
    with pytest.raises(antispoof.AntiSpoofModelError, match="sha256"):
        make_app(liveness_enabled=True)
    make_app(liveness_enabled=True, liveness_passive_min_score=0.0)
