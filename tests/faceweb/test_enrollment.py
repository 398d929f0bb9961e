"""Consent and enrollment through the HTTP endpoints, with real photos through the real engine."""
from __future__ import annotations

from idp import get_db

from .conftest import notice_version


def test_enrollment_page_shows_notice_and_requires_consent(app, new_user, browser, people):
    user = new_user("alice")
    browser.login("alice")
    page = browser.get("/face/enroll")
    assert page.status_code == 200
    for dom_id in ('id="consent-checkbox"', 'id="consent-submit"'):
        assert dom_id in page.text
    assert "never stored" in page.text and "Delete my face data" in page.text
    # The capture widget is not offered before consent.
    assert 'id="start-camera"' not in page.text

    # Without consent the capture API refuses, and nothing is stored.
    resp = browser.start("enroll")
    assert resp.status_code == 403 and resp.get_json()["error"] == "consent_required"
    # Submitting the notice form without ticking the box is refused too.
    resp = browser.form("/face/consent", {"notice_version": notice_version()}, page="/face/enroll")
    assert resp.status_code == 400 and 'id="consent-error"' in resp.text
    db = get_db(app)
    assert db.face_status.count_documents({}) == 0
    assert db.capture_sessions.count_documents({}) == 0
    assert db.face_templates.count_documents({}) == 0

    browser.consent()
    status = db.face_status.find_one({"_id": user["_id"]})
    assert status["consent"]["notice_version"] == notice_version() and status["consent"]["at"]
    page = browser.get("/face/enroll")
    for dom_id in ("start-camera", "video", "guidance", "progress", "result", "retry"):
        assert f'id="{dom_id}"' in page.text
    assert '<meta name="csrf-token"' in page.text and "js/face-capture.js" in page.text
    assert db.audit_log.count_documents({"event": "face.consent", "user_id": user["_id"]}) == 1


def test_enrollment_stores_encrypted_template_and_issues_recovery_codes(app, new_user, browser, people):
    user = new_user("alice")
    browser.login("alice")
    browser.consent()
    start = browser.start("enroll")
    assert start.status_code == 201
    cap = start.get_json()
    assert cap["frames_needed"] == 5 and cap["nonce"] and "liveness" in cap and "challenge" not in cap

    # A frame with no face gives guidance and does not count.
    from PIL import Image
    import io
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(buf, "JPEG")
    r = browser.frame(cap, buf.getvalue())
    assert r.status_code == 200
    body = r.get_json()
    assert body["ok"] is False and "no_face" in body["reasons"] and body["message"] and body["good_frames"] == 0

    for i, image in enumerate(people["alice"][:5]):
        body = browser.frame(cap, image).get_json()
        assert body["ok"], body
        assert body["good_frames"] == i + 1
    assert body["done"] is True

    db = get_db(app)
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["user_id"] == user["_id"] and doc["purpose"] == "enroll" and doc["status"] == "open"
    assert len(doc["frames"]) == 6 and all("at" in f and f["client_ts"] for f in doc["frames"])
    # Embeddings are kept encrypted until the end; no image anywhere.
    assert all("ciphertext" in f["emb"] for f in doc["frames"] if f["ok"])
    assert not any(isinstance(v, bytes) for f in doc["frames"] for v in f.values())

    fin = browser.finish(cap)
    assert fin.status_code == 200
    assert fin.get_json() == {"ok": True, "message": "Your face is enrolled.", "redirect": "/face/enroll/done"}

    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["status"] == "finished" and not any("emb" in f for f in doc["frames"])
    tpl = db.face_templates.find_one({"_id": user["_id"]})
    assert tpl["alg"] == "AES-256-GCM" and tpl["ciphertext"] and "embeddings" not in tpl and "mean" not in tpl
    # It decrypts, with the configured key, for this user only.
    from idp.face import TemplateCipher, TemplateTamperedError
    from idp.face.repository import load_template
    import pytest
    cipher = TemplateCipher(app.config["IDP"].template_key)
    assert load_template(db, user["_id"], cipher).embeddings.shape[0] >= 3
    with pytest.raises(TemplateTamperedError):
        cipher.decrypt(tpl, "someone-else")

    # Ten single-use recovery codes, stored as hashes, shown exactly once.
    stored = list(db.recovery_codes.find({"user_id": user["_id"]}))
    assert len(stored) == 10 and all(len(c["code_hash"]) == 64 and c["used_at"] is None for c in stored)
    done = browser.get("/face/enroll/done")
    assert done.status_code == 200
    import re
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert not any(code in str(stored) for code in codes)
    again = browser.get("/face/enroll/done")
    assert again.status_code == 302 and not any(code in again.text for code in codes)

    # Now that a template exists, the enrollment API refuses (re-enrolling needs password + face again).
    r = browser.frame(cap, people["alice"][0])
    assert r.status_code == 403 and r.get_json()["error"] == "enroll_not_allowed"

    entries = list(db.audit_log.find({"event": "face.enroll", "user_id": user["_id"]}))
    assert len(entries) == 1 and entries[0]["decision"] == "enrolled" and entries[0]["ip"]


def test_enrollment_with_too_few_good_frames_fails_and_stores_nothing(app, new_user, browser, people):
    new_user("alice")
    browser.login("alice")
    browser.consent()
    cap = browser.start("enroll").get_json()
    for image in people["alice"][:2]:
        assert browser.frame(cap, image).get_json()["ok"]
    body = browser.finish(cap).get_json()
    assert body["ok"] is False and body["reasons"] == ["not_enough_good_frames"] and body["message"]
    db = get_db(app)
    assert db.face_templates.count_documents({}) == 0 and db.recovery_codes.count_documents({}) == 0


def test_mixed_people_are_refused_at_enrollment(app, new_user, browser, people):
    new_user("alice")
    browser.login("alice")
    browser.consent()
    cap = browser.start("enroll").get_json()
    for image in people["alice"][:3] + people["mallory"][:3]:
        browser.frame(cap, image)
    body = browser.finish(cap).get_json()
    assert body["ok"] is False and "inconsistent_frames" in body["reasons"]
    assert get_db(app).face_templates.count_documents({}) == 0


def test_enrolled_user_cannot_overwrite_template_without_reauthentication(app, enrolled, people):
    user, b = enrolled
    # Enrollment page and API refuse while a template exists (no password + face re-check yet).
    assert b.get("/face/enroll").headers["Location"].endswith("/account/face")
    assert b.start("enroll").status_code == 403


def test_registration_leads_straight_to_enrollment_with_not_now(app, browser):
    """The enrollment page is reached right after registration; with nothing requiring the face
    step it can be postponed, and "Not now" continues to the account page."""
    from .conftest import PASSWORD
    resp = browser.form("/register", {"name": "Newcomer", "username": "newcomer", "email": "new@example.org",
                                      "password": PASSWORD, "confirm": PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/face/enroll")
    page = browser.get("/face/enroll")
    assert page.status_code == 200 and 'id="consent-checkbox"' in page.text and "Not now" in page.text
    later = browser.get("/face/continue")
    assert later.status_code == 302 and later.headers["Location"].endswith("/account")
    assert browser.get("/account").status_code == 200
