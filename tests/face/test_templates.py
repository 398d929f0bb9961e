"""Template serialisation, AES-256-GCM protection bound to the user, and the MongoDB repository."""
from __future__ import annotations

import base64
import secrets

import numpy as np
import pytest

from idp.face import Template, TemplateCipher, TemplateTamperedError
from idp.face.repository import delete_template, load_template, save_template, template_info


def _template(seed=0):
    rng = np.random.RandomState(seed)
    embs = rng.randn(4, 512).astype(np.float32)
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    return Template.from_embeddings(embs, quality={"frames_used": 4})


def test_dict_round_trip():
    t = _template()
    back = Template.from_dict(t.to_dict())
    assert np.array_equal(back.mean, t.mean) and np.array_equal(back.embeddings, t.embeddings)
    assert back.model_id == t.model_id and back.model_version == t.model_version
    assert back.created_at == t.created_at and back.quality == {"frames_used": 4}


def test_encrypt_round_trip_and_no_plaintext():
    cipher = TemplateCipher(secrets.token_hex(32))
    t = _template()
    doc = cipher.encrypt(t, "user-1")
    assert doc["alg"] == "AES-256-GCM" and "mean" not in doc and "embeddings" not in doc
    raw = base64.b64decode(doc["ciphertext"])
    assert np.asarray(t.mean, "<f4").tobytes()[:16] not in raw
    back = cipher.decrypt(doc, "user-1")
    assert np.array_equal(back.mean, t.mean)
    assert cipher.encrypt(t, "user-1")["nonce"] != doc["nonce"]  # fresh nonce every time


def test_tampering_is_detected():
    key = secrets.token_hex(32)
    cipher = TemplateCipher(key)
    doc = cipher.encrypt(_template(), "user-1")
    raw = bytearray(base64.b64decode(doc["ciphertext"]))
    raw[10] ^= 1
    with pytest.raises(TemplateTamperedError):
        cipher.decrypt(dict(doc, ciphertext=base64.b64encode(bytes(raw)).decode()), "user-1")
    with pytest.raises(TemplateTamperedError):  # moved onto another user's record
        cipher.decrypt(doc, "user-2")
    with pytest.raises(TemplateTamperedError):  # model id relabelled
        cipher.decrypt(dict(doc, model_id="other"), "user-1")
    with pytest.raises(TemplateTamperedError):  # another key
        TemplateCipher(secrets.token_hex(32)).decrypt(doc, "user-1")
    with pytest.raises(TemplateTamperedError):
        cipher.decrypt({"alg": "AES-256-GCM"}, "user-1")


@pytest.mark.parametrize("key", ["", "abc", "zz" * 32, "00" * 16])
def test_bad_keys(key):
    with pytest.raises(ValueError):
        TemplateCipher(key)


def test_repository(db):
    cipher = TemplateCipher(secrets.token_hex(32))
    assert load_template(db, "u1", cipher) is None
    t = _template(1)
    save_template(db, "u1", t, cipher)
    stored = db["face_templates"].find_one({"_id": "u1"})
    assert "ciphertext" in stored and "mean" not in stored
    assert template_info(db, "u1")["model_id"] == t.model_id
    assert np.array_equal(load_template(db, "u1", cipher).mean, t.mean)
    t2 = _template(2)
    save_template(db, "u1", t2, cipher)  # replaces
    assert db["face_templates"].count_documents({}) == 1
    assert np.array_equal(load_template(db, "u1", cipher).mean, t2.mean)
    # Copy u1's record onto u2: refused.
    db["face_templates"].insert_one(dict(stored, _id="u2"))
    with pytest.raises(TemplateTamperedError):
        load_template(db, "u2", cipher)
    assert delete_template(db, "u1") is True
    assert delete_template(db, "u1") is False
    assert load_template(db, "u1", cipher) is None
