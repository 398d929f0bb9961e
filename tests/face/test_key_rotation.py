"""Template key rotation: records under a retired key stay readable, `idp faces rekey` moves them to the
current key one conditional update at a time, and a record under a key that is not configured still fails
closed. Real SecantusDB, real AES-GCM; the end-to-end test enrolls real photos with the real engine."""
from __future__ import annotations

import json
import secrets

import numpy as np
import pytest
from click.testing import CliRunner

from idp.face import Template, TemplateCipher, TemplateTamperedError, settings
from idp.faceweb.cli import faces
from idp.face.repository import load_template, rekey_template, rekey_templates, save_template
from idp.faceweb.capture_sessions import Captures
from idp.faceweb.integrity import TemplateKeyError, check_template_key

KEY_A, KEY_B, KEY_C = (secrets.token_hex(32) for _ in range(3))


def _template(seed=0):
    rng = np.random.RandomState(seed)
    embs = rng.randn(3, 512).astype(np.float32)
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    return Template.from_embeddings(embs)


def test_retired_key_reads_rekey_moves_to_current_and_retired_key_can_then_go(db):
    a, b_with_a, b = TemplateCipher(KEY_A), TemplateCipher(KEY_B, [KEY_A]), TemplateCipher(KEY_B)
    for i in range(5):
        save_template(db, f"u{i}", _template(i), a)
    with pytest.raises(TemplateKeyError):  # B alone: the server refuses to start, as before
        check_template_key(db, b)
    check_template_key(db, b_with_a)
    assert np.array_equal(load_template(db, "u1", b_with_a).mean, _template(1).mean)
    # a new enrollment is written under the current key only
    save_template(db, "new", _template(9), b_with_a)
    assert db.face_templates.find_one({"_id": "new"})["key_id"] == b.key_id

    counts = rekey_templates(db, b_with_a, batch=2)  # batches: walks on by _id
    assert counts == {a.key_id: {"rekeyed": 5}}
    assert {d["key_id"] for d in db.face_templates.find()} == {b.key_id}
    assert rekey_templates(db, b_with_a) == {}  # finished: a second run has nothing to do
    check_template_key(db, b)  # the retired key can now be dropped
    for i in range(5):
        assert np.array_equal(load_template(db, f"u{i}", b).mean, _template(i).mean)
    with pytest.raises(TemplateTamperedError):  # and the old key alone no longer reads them
        load_template(db, "u0", a)


def test_rekey_keeps_the_other_fields_and_the_binding_to_the_user(db):
    a, b_with_a = TemplateCipher(KEY_A), TemplateCipher(KEY_B, [KEY_A])
    save_template(db, "u1", _template(1), a)
    db.face_templates.update_one({"_id": "u1"}, {"$set": {"enrolled_via": "recovery"}})
    before = db.face_templates.find_one({"_id": "u1"})
    rekey_templates(db, b_with_a)
    after = db.face_templates.find_one({"_id": "u1"})
    assert after["enrolled_via"] == "recovery" and after["created_at"] == before["created_at"]
    assert after["ciphertext"] != before["ciphertext"] and after["nonce"] != before["nonce"]
    with pytest.raises(TemplateTamperedError):  # still bound to its user
        b_with_a.decrypt(after, "u2")


def test_dry_run_changes_nothing(db):
    a, b_with_a = TemplateCipher(KEY_A), TemplateCipher(KEY_B, [KEY_A])
    for i in range(3):
        save_template(db, f"u{i}", _template(i), a)
    before = list(db.face_templates.find().sort("_id", 1))
    assert rekey_templates(db, b_with_a, dry_run=True) == {a.key_id: {"rekeyed": 3}}
    assert list(db.face_templates.find().sort("_id", 1)) == before


def test_a_re_enrollment_between_read_and_write_is_not_overwritten(db):
    a, b_with_a = TemplateCipher(KEY_A), TemplateCipher(KEY_B, [KEY_A])
    save_template(db, "u1", _template(1), a)
    stale = db.face_templates.find_one({"_id": "u1"})  # what rekey read
    save_template(db, "u1", _template(2), a)  # the user re-enrolls (on an instance still writing under A)
    assert rekey_template(db, b_with_a, stale) == "changed"
    assert np.array_equal(load_template(db, "u1", b_with_a).mean, _template(2).mean)
    stale = db.face_templates.find_one({"_id": "u1"})
    db.face_templates.delete_one({"_id": "u1"})  # or deletes the face data meanwhile
    assert rekey_template(db, b_with_a, stale) == "changed"
    assert db.face_templates.find_one({"_id": "u1"}) is None  # not brought back
    # the next run picks up what is left
    save_template(db, "u1", _template(3), a)
    assert rekey_templates(db, b_with_a) == {a.key_id: {"rekeyed": 1}}


def test_a_template_under_an_unknown_key_still_fails_closed_and_is_left_alone(db):
    a, c, b_with_a = TemplateCipher(KEY_A), TemplateCipher(KEY_C), TemplateCipher(KEY_B, [KEY_A])
    save_template(db, "u1", _template(1), c)
    save_template(db, "u2", _template(2), a)
    with pytest.raises(TemplateTamperedError):
        load_template(db, "u1", b_with_a)
    with pytest.raises(TemplateKeyError) as exc:
        check_template_key(db, b_with_a)
    assert KEY_A not in str(exc.value) and KEY_B not in str(exc.value) and "IDP_TEMPLATE_KEYS_RETIRED" in str(exc.value)
    before = db.face_templates.find_one({"_id": "u1"})
    counts = rekey_templates(db, b_with_a)
    assert counts == {c.key_id: {"unknown_key": 1}, a.key_id: {"rekeyed": 1}}
    assert db.face_templates.find_one({"_id": "u1"}) == before
    # a record claiming a configured key id but sealed with another key fails authentication
    forged = dict(before, key_id=a.key_id)
    with pytest.raises(TemplateTamperedError):
        b_with_a.decrypt(forged, "u1")


def test_capture_embeddings_under_the_retired_key_are_resealed(db):
    a, b_with_a, b = TemplateCipher(KEY_A), TemplateCipher(KEY_B, [KEY_A]), TemplateCipher(KEY_B)
    old = Captures(db, a, 300)
    doc = old.create("u1", "enroll", 3)
    embs = _template(4).embeddings
    frames = [{"at": None, "ok": True, "emb": a.encrypt(Template.from_embeddings([e]), old._aad(doc))} for e in embs]
    frames.insert(1, {"at": None, "ok": False, "reasons": ["blurry"]})
    db.capture_sessions.update_one({"_id": doc["_id"]}, {"$set": {"frames": frames}})
    assert Captures(db, b_with_a, 300).rekey(dry_run=True) == {a.key_id: {"rekeyed": 3}}
    assert Captures(db, b_with_a, 300).rekey() == {a.key_id: {"rekeyed": 3}}
    stored = db.capture_sessions.find_one({"_id": doc["_id"]})
    # readable with the new key alone (each frame: {template version: embedding})
    got = [e[settings.MODEL_VERSION] for _, e in Captures(db, b, 300).embeddings(stored)]
    assert np.allclose(np.stack(got), embs)
    assert stored["frames"][1] == {"at": None, "ok": False, "reasons": ["blurry"]}


# --- the command, end to end ---------------------------------------------------------------------------

@pytest.fixture
def cli_env(face_data_dir, mongo_uri, db, engine, tmp_path):
    from idp.store import migrate
    migrate.apply(db)
    return {"IDP_DATA_DIR": str(face_data_dir), "MONGODB_URI": mongo_uri, "IDP_DB_NAME": db.name,
            "IDP_SECRET_KEY": "s" * 32, "IDP_KEY_ENCRYPTION_KEY": "k" * 32}


def test_faces_rekey_command_end_to_end(cli_env, db, photos):
    db.users.insert_one({"_id": "sub-1", "username": "blair"})
    runner = CliRunner()
    env_a = dict(cli_env, IDP_TEMPLATE_KEY=KEY_A)
    env_ba = dict(cli_env, IDP_TEMPLATE_KEY=KEY_B, IDP_TEMPLATE_KEYS_RETIRED=KEY_A)
    env_b = dict(cli_env, IDP_TEMPLATE_KEY=KEY_B)
    enroll = runner.invoke(faces, ["enroll", "blair"] + [str(p) for p in photos["blair"][:5]], env=env_a)
    assert enroll.exit_code == 0, enroll.output
    a_id, b_id = TemplateCipher(KEY_A).key_id, TemplateCipher(KEY_B).key_id
    probe = [str(photos["blair"][6]), "--json"]

    ok = runner.invoke(faces, ["verify", "blair", *probe], env=env_ba)
    assert ok.exit_code == 0 and json.loads(ok.output)["decision"] == "match", ok.output
    dry = runner.invoke(faces, ["rekey", "--dry-run"], env=env_ba)
    assert dry.exit_code == 0 and "would re-seal 1 face template" in dry.output and a_id in dry.output
    assert db.face_templates.find_one({"_id": "sub-1"})["key_id"] == a_id
    assert db.audit_log.count_documents({"event": "face.templates_rekeyed"}) == 0

    from idp.faceweb.recovery import issue_recovery_codes
    issue_recovery_codes(db, "sub-1", "an-earlier-secret-key")  # HMACs: nothing to re-seal, but counted
    done = runner.invoke(faces, ["rekey"], env=env_ba)
    assert done.exit_code == 0, done.output
    assert "note: 10 unused recovery code(s) were issued under an earlier IDP_SECRET_KEY" in done.output
    assert f"key id {a_id}: rekeyed 1" in done.output and "re-sealed 1 face template" in done.output
    doc = db.face_templates.find_one({"_id": "sub-1"})
    assert doc["key_id"] == b_id
    for secret in (KEY_A, KEY_B, doc["ciphertext"][:24]):
        assert secret not in done.output
    entries = list(db.audit_log.find({"event": "face.templates_rekeyed"}))
    assert len(entries) == 1 and entries[0]["details"]["rekeyed"] == 1 and entries[0]["details"]["key_id"] == b_id
    assert entries[0]["details"]["recovery_codes_other_secret_key"] == 10

    ok = runner.invoke(faces, ["verify", "blair", *probe], env=env_b)  # the retired key is gone
    assert ok.exit_code == 0 and json.loads(ok.output)["decision"] == "match", ok.output
    bad = runner.invoke(faces, ["verify", "blair", *probe], env=env_a)  # the old key alone: fails closed
    assert bad.exit_code == 1 and "not configured" in bad.output
