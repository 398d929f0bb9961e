"""Regressions from the security review of the face pages, the capture API and the admin pages."""
from __future__ import annotations

from .conftest import Browser, enroll_user, signed_in_admin


def test_capture_nonce_with_non_ascii_characters_is_a_clear_403_not_a_500(app, new_user, people):
    new_user("alice")
    b = Browser(app)
    b.login("alice")
    b.consent()
    cap = b.start("enroll").get_json()
    for nonce in ("\xff\xfe", "ü" + cap["nonce"][1:]):
        r = b.frame(cap, people["alice"][0], nonce=nonce)
        assert r.status_code == 403 and r.get_json()["error"] == "bad_nonce"
        r = b.finish(cap, nonce=nonce)
        assert r.status_code == 403 and r.get_json()["error"] == "bad_nonce"
    # The capture is still usable with its real nonce: the bad requests recorded nothing.
    assert b.frame(cap, people["alice"][0]).status_code == 200


def test_admin_audit_page_number_beyond_any_offset_is_clamped_not_a_500(app, people):
    a = signed_in_admin(app, people["mallory"])
    for page in ("9" * 30, "9223372036854775807", "-9" * 10, "1e9", "x"):
        r = a.get(f"/admin/audit?page={page}")
        assert r.status_code == 200, page
        assert "Traceback" not in r.text


# --- parallel face / recovery-code checks cannot overshoot the lock ------------------------------

def _failing_verify_capture(b: Browser, images) -> dict:
    cap = b.start("verify").get_json()
    for image in images:
        assert b.frame(cap, image).status_code == 200
    return cap


def test_parallel_verify_finishes_cannot_overshoot_the_face_lock(make_app, new_user, people):
    """Several failing verify captures finished at once, at failures = lock_after - 1: the failure count
    never exceeds lock_after, the lock engages, and each extra finish is refused (busy or locked)."""
    import threading

    from idp import get_db
    app = make_app(face_free_failures=5, face_lock_after=3)
    user, first = enroll_user(app, new_user, people["alice"])
    uid = user["_id"]
    db = get_db(app)
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": 2}})

    n = 6
    browsers = [Browser(app) for _ in range(n)]
    caps = []
    for b in browsers:
        b.login("alice")
        caps.append(_failing_verify_capture(b, people["mallory"][:3]))
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        r = browsers[i].finish(caps[i])
        results[i] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in results), results

    status = db.face_status.find_one({"_id": uid})
    assert status["failures"] <= 3 and status.get("locked_at"), (status, results)
    assert not status.get("judging_until") and not status.get("judging_by")  # released
    counted = [body for code, body in results if code == 200]
    assert len(counted) == 1 and counted[0]["failures"] == 3 and counted[0]["locked"] is True, results
    for code, body in results:
        assert (code, body.get("error")) in {(200, None), (429, "check_in_progress"), (403, "face_locked")}, results
    assert db.audit_log.count_documents({"event": "face.verify", "decision": "no_match"}) == 1


def test_verify_finish_while_another_check_is_judged_is_busy_and_not_counted(app, enrolled, people):
    from idp import get_db
    from idp.faceweb import lockout
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    cap = _failing_verify_capture(b, people["mallory"][:3])
    token = lockout.reserve_judging(db, uid)  # another worker is judging a capture of alice
    assert token and lockout.reserve_judging(db, uid) is None
    r = b.finish(cap)
    assert r.status_code == 429 and r.get_json()["error"] == "check_in_progress"
    assert r.get_json()["message"] == "Another face check is in progress. Try again in a moment."
    assert r.headers["Retry-After"]
    assert int((db.face_status.find_one({"_id": uid}) or {}).get("failures") or 0) == 0
    assert db.capture_sessions.find_one({"_id": cap["capture_id"]})["status"] == "open"  # still usable
    lockout.release_judging(db, uid, token)
    body = b.finish(cap).get_json()
    assert body["ok"] is False and body["failures"] == 1


def test_judging_reservation_expires_creates_missing_status_and_only_its_owner_releases(app, new_user):
    from datetime import datetime, timedelta, timezone

    from idp import get_db
    from idp.faceweb import lockout
    uid = new_user("alice")["_id"]
    db = get_db(app)
    assert db.face_status.find_one({"_id": uid}) is None
    t1 = lockout.reserve_judging(db, uid)  # no face_status yet: created reserved
    assert t1 and lockout.reserve_judging(db, uid) is None
    # A crashed worker's reservation expires and can be taken over; its late release frees nothing.
    db.face_status.update_one({"_id": uid}, {"$set": {"judging_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    t2 = lockout.reserve_judging(db, uid)
    assert t2 and t2 != t1
    lockout.release_judging(db, uid, t1)
    assert lockout.reserve_judging(db, uid) is None
    # Recovery-code checks have their own reservation.
    t3 = lockout.reserve_judging(db, uid, prefix="recovery_")
    assert t3 and lockout.reserve_judging(db, uid, prefix="recovery_") is None
    lockout.release_judging(db, uid, t2)
    lockout.release_judging(db, uid, t3, prefix="recovery_")
    assert lockout.reserve_judging(db, uid) and lockout.reserve_judging(db, uid, prefix="recovery_")


def test_recovery_code_check_while_another_is_judged_is_busy_and_not_counted(app, enrolled):
    from idp import get_db
    from idp.faceweb import lockout
    user, _ = enrolled
    uid = user["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    token = lockout.reserve_judging(db, uid, prefix="recovery_")
    r = b.form("/face/recover", {"code": "aaaaa-bbbbb"})
    assert r.status_code == 429 and "Another face check is in progress" in r.text
    assert not db.face_status.find_one({"_id": uid}).get("recovery_failures")
    lockout.release_judging(db, uid, token, prefix="recovery_")
    r = b.form("/face/recover", {"code": "aaaaa-bbbbb"})
    assert r.status_code == 400 and db.face_status.find_one({"_id": uid})["recovery_failures"] == 1
    assert not db.face_status.find_one({"_id": uid}).get("recovery_judging_until")


# --- fresh recovery codes are not kept as plain text in the session ------------------------------

def _session_doc(b: Browser) -> dict:
    import hashlib

    from idp import get_db
    cookie = b.client.get_cookie("deepauth_session")
    return get_db(b.app).sessions.find_one({"_id": hashlib.sha256(cookie.value.encode()).hexdigest()})


def test_new_recovery_codes_are_encrypted_in_the_session_and_shown_once(app, enrolled):
    import re
    _, b = enrolled
    doc = _session_doc(b)
    stash = doc["data"]["face_new_codes"]
    assert set(stash) == {"uid", "at", "nonce", "ct"}
    done = b.get("/face/enroll/done")
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10
    for code in codes:
        assert code not in str(doc) and code.replace("-", "") not in str(doc)
    assert "face_new_codes" not in _session_doc(b)["data"]
    again = b.get("/face/enroll/done")
    assert again.status_code == 302 and not any(code in again.text for code in codes)


def test_new_recovery_codes_are_not_shown_after_ten_minutes(app, enrolled):
    _, b = enrolled
    doc = _session_doc(b)
    from idp import get_db
    get_db(app).sessions.update_one({"_id": doc["_id"]}, {"$inc": {"data.face_new_codes.at": -601}})
    r = b.get("/face/enroll/done")
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/continue")
    assert "face_new_codes" not in _session_doc(b)["data"]
    page = b.get("/account", follow_redirects=True)
    assert "/account/face" in page.text and "ask an administrator to void them" in page.text
