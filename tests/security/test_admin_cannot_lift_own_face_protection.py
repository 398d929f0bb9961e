"""An administrator cannot reset or unlock their own face sign-in on the admin pages.

A face reset lifts the lock and lets the account enroll a new face after the password alone; an unlock lifts
the lock and the failure count. Done by an administrator to their own account, it needs no one but whoever has
a session of theirs with the face proven (an unattended browser, a stolen cookie) and their password: the reset
then lets a password-only sign-in enroll another face, which after the cooling-off period is the admin's face
factor for good. Both are refused for one's own account (like disabling or deleting it): nothing is changed
and nothing is audited; another administrator or the CLI does it.

Real app, real MongoDB, real face engine (admin pages need amr "face").
"""
from __future__ import annotations

from datetime import datetime, timezone

from idp import get_db

from ._face import Browser, CSRF_INPUT, app, cheap_password_hashing, engine, make_app, people  # noqa: F401


def _post(admin: Browser, path: str, page: str, **data):
    m = CSRF_INPUT.search(admin.get(page).text)
    assert m, page
    return admin.client.post(path, data={"csrf_token": m.group(1), **data})


def _signed_in_admin(app, images):
    from faceweb.conftest import signed_in_admin
    return signed_in_admin(app, images)


def test_an_admin_cannot_reset_their_own_face_sign_in(app, people):
    db = get_db(app)
    admin = _signed_in_admin(app, people["alice"])
    root = db.users.find_one({"username": "root"})["_id"]
    db.face_status.update_one({"_id": root}, {"$set": {"failures": 4}})
    before = db.face_status.find_one({"_id": root})
    page = f"/admin/users/{root}"
    assert 'id="face-reset"' not in admin.get(page).text  # not offered
    assert 'id="face-reset"' not in admin.get(f"/admin/audit?user={root}").text

    for data in ({"user_id": root}, {"user_id": root, "confirm": "yes"}):
        r = _post(admin, "/admin/face/reset", page, **data)
        assert r.status_code == 302 and r.headers["Location"].endswith(page), r.status_code
        assert "You cannot reset the face sign-in of your own account here." in admin.get(page).text
    assert db.face_status.find_one({"_id": root}) == before  # no grant, count kept
    assert db.audit_log.count_documents({"event": "face.reset"}) == 0
    # the password alone still cannot enroll another face for the account
    other = Browser(app)
    other.login("root")
    r = other.start("enroll")
    assert r.status_code == 403 and r.get_json()["error"] == "enroll_not_allowed", r.get_json()


def test_an_admin_cannot_unlock_their_own_face_sign_in(app, people):
    db = get_db(app)
    admin = _signed_in_admin(app, people["alice"])
    root = db.users.find_one({"username": "root"})["_id"]
    # locked meanwhile (someone else tried the face in other sessions), this session's face check still stands
    db.face_status.update_one({"_id": root}, {"$set": {"failures": 10, "locked_at": datetime.now(timezone.utc)}})
    before = db.face_status.find_one({"_id": root})
    page = f"/admin/users/{root}"
    assert 'id="face-unlock"' not in admin.get(page).text  # not offered

    for data in ({}, {"confirm": "yes"}):
        r = _post(admin, f"{page}/unlock-face", page, **data)
        assert r.status_code == 302 and r.headers["Location"].endswith(page), r.status_code
        assert "You cannot unlock the face sign-in of your own account here." in admin.get(page).text
    assert db.face_status.find_one({"_id": root}) == before  # still locked
    assert db.audit_log.count_documents({"event": "admin.face_unlocked"}) == 0
