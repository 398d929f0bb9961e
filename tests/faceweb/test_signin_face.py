"""The face step of the sign-in: verification, failure delays and lock, recovery codes, re-enrollment, deletion."""
from __future__ import annotations

import pytest

import re
from datetime import datetime, timedelta, timezone

from idp import get_db

from .conftest import PASSWORD, USER_AGENT, Browser, enroll_user, session_auth, signed_in_admin


def _rewind_failure(db, uid, seconds=3600):
    """Let the waiting time pass (moves the last failure back in time)."""
    db.face_status.update_one({"_id": uid}, {"$set": {
        "last_failure_at": datetime.now(timezone.utc) - timedelta(seconds=seconds)}})


def test_enrolled_user_goes_through_face_step_and_same_person_passes(app, enrolled, people):
    user, _ = enrolled
    b = Browser(app)
    resp = b.login("alice")
    # After the password, an enrolled user is sent to the face step; the account page is not reachable yet.
    assert resp.headers["Location"].endswith("/face/verify")
    assert b.get("/account").headers["Location"].endswith("/face/verify")
    assert session_auth(b)["amr"] == ["pwd"]
    page = b.get("/face/verify")
    assert page.status_code == 200 and 'id="start-camera"' in page.text and 'data-purpose="verify"' in page.text

    fin = b.capture("verify", people["alice"][5:8])
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is True and body["redirect"].startswith("/account")
    assert "score" not in body  # the score is never shown to the browser
    assert session_auth(b)["amr"] == ["pwd", "face"]
    assert b.get("/account").status_code == 200
    assert b.get("/face/verify").status_code == 302  # already satisfied

    db = get_db(app)
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": user["_id"]})
    assert entry["decision"] == "match" and entry["score"] >= entry["details"]["threshold"] and entry["ip"] and entry["user_agent"] == USER_AGENT
    # Per-frame results stay (for later analysis) but not the embeddings; never images.
    cap = db.capture_sessions.find_one({"user_id": user["_id"], "purpose": "verify"})
    assert cap["status"] == "finished" and cap["result"]["ok"] is True and cap["frames"]
    assert not any("emb" in f for f in cap["frames"])


def test_other_person_fails_with_guidance(app, enrolled, people):
    user, _ = enrolled
    b = Browser(app)
    b.login("alice")
    body = b.capture("verify", people["mallory"][:3]).get_json()
    assert body["ok"] is False and body["reasons"] == ["below_threshold"] and "did not match" in body["message"]
    assert body["failures"] == 1 and not body.get("locked")
    assert session_auth(b)["amr"] == ["pwd"]
    assert b.get("/account").headers["Location"].endswith("/face/verify")
    entry = get_db(app).audit_log.find_one({"event": "face.verify", "decision": "no_match"})
    assert entry["user_id"] == user["_id"] and entry["score"] < entry["details"]["threshold"] and entry["reasons"] == ["below_threshold"]
    # A success afterwards resets the consecutive-failure count.
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"] is True
    assert get_db(app).face_status.find_one({"_id": user["_id"]})["failures"] == 0


@pytest.mark.slow
def test_failures_delay_then_lock_then_recovery_code(app, enrolled, people):
    """Defaults: 5 free failures, then a delay from 30 s doubling each time, locked at 10."""
    user, first = enrolled
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", first.get("/face/enroll/done").text)
    assert len(codes) == 10
    db = get_db(app)
    uid = user["_id"]
    b = Browser(app)
    b.login("alice")
    impostor = people["mallory"][:3]
    for i in range(1, 5):
        assert b.capture("verify", impostor).get_json()["failures"] == i
    body = b.capture("verify", impostor).get_json()  # 5th failure: the waiting time starts
    assert body["failures"] == 5 and body["retry_after"] == 30 and "wait 30 seconds" in body["message"]
    r = b.start("verify")
    assert r.status_code == 429 and r.get_json()["retry_after"] in (29, 30) and r.headers["Retry-After"]
    assert "wait" in b.get("/face/verify").text
    expected = {6: 60, 7: 120, 8: 240, 9: 480}
    for n in range(6, 10):
        _rewind_failure(db, uid)
        body = b.capture("verify", impostor).get_json()
        assert body["failures"] == n and body["retry_after"] == expected[n]
        assert b.start("verify").status_code == 429
    _rewind_failure(db, uid)
    body = b.capture("verify", impostor).get_json()  # 10th: locked
    assert body["locked"] is True and body["redirect"] == "/face/recover"
    assert db.audit_log.count_documents({"event": "face.lockout", "user_id": uid}) == 1

    # Locked: no waiting time helps, even the right face is not checked any more.
    _rewind_failure(db, uid, 10 ** 6)
    r = b.start("verify")
    assert r.status_code == 403 and r.get_json()["error"] == "face_locked"
    page = b.get("/face/verify")
    assert "locked" in page.text and 'id="start-camera"' not in page.text

    # Recovery: a wrong code is refused; a right one lifts the lock and allows a new enrollment (the old
    # template stays until it is replaced).
    r = b.form("/face/recover", {"code": "aaaaa-bbbbb"})
    assert r.status_code == 400 and "not valid" in r.text
    r = b.form("/face/recover", {"code": codes[3].upper()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/enroll")
    assert db.face_templates.count_documents({"_id": uid}) == 1
    status = db.face_status.find_one({"_id": uid})
    assert not status.get("locked_at") and status["failures"] == 0
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 9
    # A recovery code never counts as the face factor: it is a one-time code.
    assert session_auth(b)["amr"] == ["pwd", "otp"]
    # The same code does not work twice.
    other = Browser(app)
    other.login("alice")
    assert other.form("/face/recover", {"code": codes[3]}).status_code == 400
    assert [e["decision"] for e in db.audit_log.find({"event": "face.recovery"}).sort("at", 1)] == [
        "rejected", "accepted", "rejected"]

    # Enroll again (consent still recorded). The session that used the code never verifies a face; a new
    # sign-in does once the cooling-off period is over.
    assert b.capture("enroll", people["alice"][:5]).get_json()["ok"] is True
    # no new set from a recovery-code session: the 9 remaining codes stay
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 9
    assert b.start("verify").get_json()["error"] == "recovery_session"
    c = Browser(app)
    c.login("alice")
    assert c.start("verify").get_json()["error"] == "face_cooloff"
    db.face_status.update_one({"_id": uid}, {"$set": {"cooloff_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    assert c.capture("verify", people["alice"][5:8]).get_json()["ok"] is True
    assert session_auth(c)["amr"] == ["pwd", "face"]


def test_limits_are_configurable(make_app, new_user, people):
    app = make_app(face_free_failures=1, face_lock_after=2, face_base_delay_s=7)
    _, b = enroll_user(app, new_user, people["alice"])
    uid = get_db(app).users.find_one({"username": "alice"})["_id"]
    body = b.capture("verify", people["mallory"][:3]).get_json()
    assert body["failures"] == 1 and body["retry_after"] == 7
    _rewind_failure(get_db(app), uid)
    body = b.capture("verify", people["mallory"][:3]).get_json()
    assert body["failures"] == 2 and body["locked"] is True


def test_admin_reset_unlocks_face_signin(make_app, new_user, people):
    app = make_app(face_free_failures=5, face_lock_after=1)
    a = signed_in_admin(app, people["mallory"])  # admin pages need a face sign-in
    admin = get_db(app).users.find_one({"username": "root"})
    _, b = enroll_user(app, new_user, people["alice"])
    assert b.capture("verify", people["mallory"][:3]).get_json()["locked"] is True
    uid = get_db(app).users.find_one({"username": "alice"})["_id"]

    page = a.get("/admin/audit?user=alice")
    assert page.status_code == 200 and 'id="face-reset"' in page.text
    r = a.form("/admin/face/reset", {"user_id": uid}, page="/admin/audit?user=alice")
    assert r.status_code == 200 and 'id="confirm-face-reset"' in r.text  # asks first
    assert get_db(app).face_status.find_one({"_id": uid}).get("locked_at")
    r = a.form("/admin/face/reset", {"user_id": uid, "confirm": "yes"}, page="/admin/audit?user=alice")
    assert r.status_code == 302
    assert not get_db(app).face_status.find_one({"_id": uid}).get("locked_at")
    assert get_db(app).audit_log.find_one({"event": "face.reset"})["details"]["admin"] == admin["_id"]
    page = a.get("/admin/audit?user=alice").text
    assert 'id="reset-grant"' in page and "a new enrollment is allowed until" in page  # the grant expires
    assert "permission to enroll has expired" not in a.get(f"/admin/users/{uid}").text
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"] is True


def test_reenrollment_requires_password_and_fresh_face_match(app, enrolled, people):
    user, _ = enrolled
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    page = b.get("/account/face")
    assert page.status_code == 200 and "Enrolled" in page.text and 'id="reenroll-submit"' in page.text
    assert b.start("enroll").status_code == 403

    r = b.form("/account/face/reenroll", {"password": "wrong password entirely"}, page="/account/face")
    assert r.headers["Location"].endswith("/account/face")
    assert b.start("enroll").status_code == 403
    r = b.form("/account/face/reenroll", {"password": "correct horse battery staple 42"}, page="/account/face")
    assert r.headers["Location"].endswith("/face/verify?reenroll=1")
    assert b.start("enroll").status_code == 403  # the password alone is not enough
    assert b.get("/face/verify?reenroll=1").status_code == 200
    body = b.capture("verify", people["alice"][5:8]).get_json()
    assert body["ok"] and body["redirect"] == "/face/enroll"
    assert b.capture("enroll", people["alice"][2:7]).get_json()["ok"] is True
    entries = list(get_db(app).audit_log.find({"event": "face.enroll", "user_id": user["_id"]}))
    assert sorted(e["details"]["replaced"] for e in entries) == [False, True]
    # The grant is used up.
    assert b.start("enroll").status_code == 403


def test_delete_face_data_really_deletes(app, enrolled, people):
    user, _ = enrolled
    uid = user["_id"]
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    db = get_db(app)
    assert db.face_templates.count_documents({"_id": uid}) == 1
    r = b.form("/account/face/delete", {}, page="/account/face")  # not confirmed: nothing happens
    assert db.face_templates.count_documents({"_id": uid}) == 1
    r = b.form("/account/face/delete", {"confirm": "yes", "password": PASSWORD}, page="/account/face")
    assert r.status_code == 302
    for coll, flt in (("face_templates", {"_id": uid}), ("face_status", {"_id": uid}),
                      ("capture_sessions", {"user_id": uid})):
        assert db[coll].count_documents(flt) == 0, coll
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # not face data: they stay
    entry = db.audit_log.find_one({"event": "face.delete", "user_id": uid})
    assert entry["decision"] == "deleted" and entry["details"]["template"] == 1
    page = b.get("/account/face")
    assert "Not enrolled" in page.text
    # Without a template and without a pending request, the password is enough again.
    c = Browser(app)
    assert c.login("alice").headers["Location"].endswith("/account")


def test_audit_log_has_no_images_and_admin_page_filters(app, enrolled, new_user, people):
    user, _ = enrolled
    b = Browser(app)
    b.login("alice")
    b.capture("verify", people["mallory"][:3])
    b.capture("verify", people["alice"][5:8])
    db = get_db(app)
    for entry in db.audit_log.find({}):
        assert set(entry) <= {"_id", "at", "event", "user_id", "client_id", "ip", "user_agent", "score", "decision",
                              "reasons", "details", "request_id"}
        assert not any(isinstance(v, (bytes, bytearray)) for v in entry.values())
        assert len(str(entry)) < 2000

    assert b.get("/admin/audit").status_code == 403  # alice is not an administrator
    a = signed_in_admin(app, people["mallory"])
    page = a.get("/admin/audit")
    assert page.status_code == 200 and "face.verify" in page.text and "face.enroll" in page.text
    page = a.get("/admin/audit?event=face.verify&user=alice")
    rows = re.findall(r"<code class=\"event\">(face\.[a-z]+)</code>", page.text)
    assert rows == ["face.verify", "face.verify"] and "no_match" in page.text and "match" in page.text
    # Pagination: 50 per page.
    from idp import audit
    for _ in range(60):
        audit.record(db, "face.verify", user_id=user["_id"], decision="match", score=0.9)
    page1 = a.get("/admin/audit?user=alice&event=face.verify")
    assert "page 1 of 2" in page1.text and 'id="next-page"' in page1.text
    page2 = a.get("/admin/audit?user=alice&event=face.verify&page=2")
    assert len(re.findall(r"<code class=\"event\">face\.verify</code>", page2.text)) == 12
