"""The admin users page: search, view, disable/enable, unlock face, delete — each destructive action
asks first and is audited; a disabled user cannot sign in and loses sessions and app tokens; delete
erases everything. Real app, real database, real face engine (admin pages need amr "face")."""
from __future__ import annotations

import pytest

import re

from .conftest import CSRF_INPUT, PASSWORD, Browser, enroll_user, signed_in_admin


def _csrf(admin: Browser, path: str) -> str:
    m = CSRF_INPUT.search(admin.get(path).text)
    assert m, path
    return m.group(1)


def _post(admin: Browser, path: str, page: str, **data):
    return admin.client.post(path, data={"csrf_token": _csrf(admin, page), **data})


def _events(db, event):
    return list(db.audit_log.find({"event": event}))


def test_search_is_by_prefix_and_paginated(app, people, new_user):
    from idp import get_db
    admin = signed_in_admin(app, people["alice"])
    for i in range(30):
        new_user(f"user{i:02d}")
    new_user("bob")
    r = admin.get("/admin/users?q=USER1")
    assert r.status_code == 200
    assert re.findall(r'data-user-id="[^"]+">\s*<td data-label="Username"><a [^>]*>([^<]+)<', r.text) == \
        [f"user{i:02d}" for i in range(10, 20)]
    r = admin.get("/admin/users?q=bob@exa")  # email prefix
    assert ">bob<" in r.text and "user00" not in r.text
    r = admin.get("/admin/users?q=user")
    assert "30 users, page 1 of 2" in r.text and 'id="next-page"' in r.text
    assert "user29" in admin.get("/admin/users?q=user&page=2").text
    assert admin.get("/admin/users?q=.*").text.count('data-user-id=') == 0  # a prefix, not a pattern
    assert get_db(app).users.count_documents({}) == 32


def test_pages_need_an_admin_with_face(app, people, new_user):
    new_user("carol")
    b = Browser(app)
    b.login("carol")
    assert b.get("/admin/users").status_code == 403  # not an administrator


def test_disable_ends_sessions_and_tokens_and_refuses_sign_in(app, people, new_user):
    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    victim = Browser(app)
    victim.login("bob")
    assert victim.get("/account").status_code == 200
    db.tokens.insert_one({"_id": "t1", "user_id": bob["_id"], "client_id": "c", "revoked": False})
    page = f"/admin/users/{bob['_id']}"
    view = admin.get(page)
    assert view.status_code == 200 and 'id="user-disable"' in view.text

    r = _post(admin, f"{page}/disable", page)  # no confirm: nothing happens, a confirmation page
    assert r.status_code == 200 and 'id="confirm-user-disable"' in r.text
    assert not db.users.find_one({"_id": bob["_id"]}).get("disabled")
    assert victim.get("/account").status_code == 200

    r = _post(admin, f"{page}/disable", page, confirm="yes")
    assert r.status_code == 302
    assert db.users.find_one({"_id": bob["_id"]})["disabled"]
    assert victim.get("/account").status_code == 302  # the session ended
    assert db.tokens.find_one({"_id": "t1"})["revoked"] is True
    [entry] = _events(db, "admin.user_disabled")
    assert entry["user_id"] == bob["_id"] and entry["details"]["sessions_ended"] == 1

    fresh = Browser(app)
    page_ = fresh.client.get("/login")
    token = CSRF_INPUT.search(page_.text).group(1)
    r = fresh.client.post("/login", data={"csrf_token": token, "username": "bob", "password": PASSWORD})
    assert r.status_code == 403 and "This account is disabled" in r.text
    r = fresh.client.post("/login", data={"csrf_token": token, "username": "bob", "password": "wrong password 1"})
    assert "This account is disabled" not in r.text and "Invalid username or password" in r.text
    assert fresh.get("/account").status_code == 302

    r = _post(admin, f"{page}/enable", page)
    assert r.status_code == 302 and not db.users.find_one({"_id": bob["_id"]}).get("disabled")
    assert len(_events(db, "admin.user_enabled")) == 1
    Browser(app).login("bob")  # asserts the 302 of a successful password step


@pytest.mark.slow
def test_unlock_face_asks_then_lifts_the_lock(app, people, new_user):
    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    db.face_status.insert_one({"_id": bob["_id"], "failures": 10, "locked_at": db.users.find_one()["created_at"]})
    page = f"/admin/users/{bob['_id']}"
    assert "locked" in admin.get(page).text
    r = _post(admin, f"{page}/unlock-face", page)
    assert 'id="confirm-face-unlock"' in r.text and db.face_status.find_one({"_id": bob["_id"]}).get("locked_at")
    _post(admin, f"{page}/unlock-face", page, confirm="yes")
    status = db.face_status.find_one({"_id": bob["_id"]})
    assert not status.get("locked_at") and status["failures"] == 0
    assert _events(db, "admin.face_unlocked")[0]["details"]["admin"] == db.users.find_one({"username": "root"})["_id"]
    # the owner is told: the lock their notice announced is lifted, and whoever holds the password may try again
    [mail] = db.mail_outbox.find({"kind": "notice:admin.face_unlocked", "user_id": bob["_id"]})
    assert mail["to"] == "bob@example.org" and mail["subject"] == "An administrator unlocked your face sign-in"


def test_void_recovery_codes_asks_then_the_codes_stop_working(app, people, new_user):
    """For an account whose first enrollment the owner did not make: the codes went to whoever enrolled,
    and an admin reset alone keeps them."""
    from idp import get_config, get_db
    from idp.faceweb import recovery
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    codes = recovery.issue_recovery_codes(db, bob["_id"], get_config(app).secret_key)
    assert recovery.use_recovery_code(db, bob["_id"], [get_config(app).secret_key], codes[0])
    page = f"/admin/users/{bob['_id']}"
    assert 'id="void-codes"' in admin.get(page).text
    r = _post(admin, f"{page}/void-recovery-codes", page)
    assert 'id="confirm-void-codes"' in r.text and recovery.remaining_recovery_codes(db, bob["_id"], get_config(app).secret_key) == len(codes) - 1
    _post(admin, f"{page}/void-recovery-codes", page, confirm="yes")
    assert recovery.remaining_recovery_codes(db, bob["_id"], get_config(app).secret_key) == 0
    assert not recovery.use_recovery_code(db, bob["_id"], [get_config(app).secret_key], codes[1])
    assert db.recovery_codes.count_documents({"user_id": bob["_id"]}) == 1  # the used one stays as history
    [entry] = _events(db, "admin.recovery_codes_voided")
    assert entry["details"]["voided"] == len(codes) - 1 and entry["user_id"] == bob["_id"]
    assert 'id="void-codes"' not in admin.get(page).text  # nothing left to void


def test_delete_asks_then_erases_everything(app, people, new_user):
    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob, b = enroll_user(app, new_user, people["alice"], "bob")
    assert db.face_templates.count_documents({"_id": bob["_id"]}) == 1
    page = f"/admin/users/{bob['_id']}"
    r = _post(admin, f"{page}/delete", page)
    assert 'id="confirm-user-delete"' in r.text and db.users.count_documents({"_id": bob["_id"]}) == 1
    r = _post(admin, f"{page}/delete", page, confirm="yes")
    assert r.status_code == 302
    for name in db.list_collection_names():
        if name.startswith("system."):
            continue
        for doc in db[name].find():
            assert bob["_id"] not in (doc.get("_id"), doc.get("user_id")) or (
                name == "audit_log" and doc["event"] == "admin.user_deleted"), (name, doc)
    assert db.sessions.count_documents({"data.auth.uid": bob["_id"]}) == 0
    [entry] = _events(db, "admin.user_deleted")
    assert entry["user_id"] is None and entry["details"]["deleted_user"] == bob["_id"]
    assert admin.get(page).status_code == 404
    assert b.get("/account").status_code == 302


def test_an_interrupted_deletion_is_shown_and_finished_by_deleting_again(app, people, new_user):
    """A deletion whose process died keeps the account refused at sign-in (``users.deletion_claimed``): the
    admin page says so and how to finish it; deleting again once the claim is stale erases the account."""
    from datetime import datetime, timedelta, timezone

    from idp import get_db
    from idp.accounts import users
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    users._claim_deletion(db, bob["_id"])
    db.users.update_one({"_id": bob["_id"]}, {"$set": {
        "deleting.at": datetime.now(timezone.utc) - timedelta(seconds=users.DELETE_CLAIM_S + 1)}})
    page = f"/admin/users/{bob['_id']}"
    r = admin.get(page)
    assert "<strong>being deleted</strong>" in r.text and "delete the account again to finish it" in r.text
    r = _post(admin, f"{page}/delete", page, confirm="yes")
    assert r.status_code == 302 and db.users.count_documents({"_id": bob["_id"]}) == 0
    assert len(_events(db, "admin.user_deleted")) == 1


def test_an_admin_cannot_disable_or_delete_themselves(app, people):
    from idp import get_db
    admin = signed_in_admin(app, people["alice"])
    root = get_db(app).users.find_one({"username": "root"})["_id"]
    page = f"/admin/users/{root}"
    for action in ("disable", "delete"):
        r = _post(admin, f"{page}/{action}", page, confirm="yes")
        assert r.status_code == 302
    assert get_db(app).users.find_one({"_id": root}).get("disabled") is None


def _posted_at_once(app, browser: Browser, path: str, data: dict, n: int) -> list:
    """``n`` posts of ``data`` to ``path`` with ``browser``'s session, over real HTTP, released together."""
    import requests
    from support.concurrency import at_once
    from support.servers import LiveServer

    from .conftest import USER_AGENT
    cookies = {"deepauth_session": browser.client.get_cookie("deepauth_session").value}
    server = LiveServer(app)

    def post():
        return requests.post(server.url + path, data=data, cookies=cookies, headers={"User-Agent": USER_AGENT},
                             allow_redirects=False)
    try:
        return at_once([post] * n)
    finally:
        server.stop()


def test_concurrent_deletes_of_one_user_audit_once(app, people, new_user):
    """Three administrators' (or one double-clicking administrator's) confirmed deletes at once: the account
    is claimed before anything is erased, so one request ends the app grants, erases and writes "user
    deleted"; the others are told it was already being deleted (before, each wrote its own entry)."""
    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    page = f"/admin/users/{bob['_id']}"
    answers = _posted_at_once(app, admin, f"{page}/delete", {"csrf_token": _csrf(admin, page), "confirm": "yes"},
                              3)
    # a post that starts only after the winner has finished finds no such user (404)
    assert all(r.status_code in (302, 404) for r in answers), [r.status_code for r in answers]
    assert db.users.count_documents({"_id": bob["_id"]}) == 0
    [entry] = _events(db, "admin.user_deleted")
    assert entry["details"]["deleted_user"] == bob["_id"]


def test_the_user_page_shows_an_unconfirmed_address_and_a_pending_change(app, people, new_user):
    """An administrator helping an owner whose address was changed sees what the account's address is and
    what is only asked for (tests/accounts/test_email_change_pending.py)."""
    from datetime import datetime, timezone

    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    db.users.update_one({"_id": bob["_id"]}, {"$set": {
        "email_verified": True, "pending_email": "mallory@evil.example",
        "pending_email_at": datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)}})
    page = admin.get(f"/admin/users/{bob['_id']}").text
    assert "(not confirmed)" not in page
    assert re.search(r'id="email-pending">change to mallory@evil.example pending since\s+2026-12-01 09:30 UTC', page)
    db.users.update_one({"_id": bob["_id"]}, {"$set": {"email_verified": False},
                                              "$unset": {"pending_email": "", "pending_email_at": ""}})
    page = admin.get(f"/admin/users/{bob['_id']}").text
    assert "(not confirmed)" in page and 'id="email-pending"' not in page
