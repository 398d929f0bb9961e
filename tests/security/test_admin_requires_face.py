"""Administration pages need a session whose amr includes "face"; destructive admin actions need an
explicit confirmation (POST with a confirm field and the CSRF token)."""
from __future__ import annotations

import re

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser, session_auth

ADMIN_PAGES = ("/admin/audit", "/admin/clients/", "/admin/clients/new")


def _face_admin(app, people) -> Browser:
    """A fresh administrator: password → enrollment → face check → the admin page."""
    a = Browser(app)
    a.login("root")
    r = a.get("/admin/clients/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/face/verify")
    assert a.get("/face/verify").headers["Location"].endswith("/face/enroll")
    a.consent()
    assert a.capture("enroll", people["alice"][:5]).get_json()["ok"]
    assert session_auth(a)["amr"] == ["pwd"]  # enrollment alone is not a face check
    assert a.get("/face/continue").headers["Location"].endswith("/face/verify")
    body = a.capture("verify", people["alice"][5:8]).get_json()
    assert body["ok"] and body["redirect"] == "/admin/clients/"
    assert session_auth(a)["amr"] == ["pwd", "face"]
    return a


def test_password_only_admin_session_never_reaches_admin_pages(app, new_user, people):
    new_user("root", is_admin=True)
    a = Browser(app)
    a.login("root")
    for path in ADMIN_PAGES:
        r = a.get(path)
        assert r.status_code == 302 and "/face/" in r.headers["Location"], path
    # POSTs are refused too (not performed).
    token = a.page_csrf("/account")
    db = get_db(app)
    from idp.oauth.clients import create_client
    doc, _ = create_client(db, app.config["IDP"], "Victim RP", ["https://rp.example/cb"])
    r = a.client.post(f"/admin/clients/{doc['client_id']}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 302 and "/face/" in r.headers["Location"] and db.clients.count_documents({"_id": doc["client_id"]}) == 1
    # Once the face step is done, the page is reached.
    a = _face_admin(app, people)
    assert a.get("/admin/clients/").status_code == 200
    assert a.get("/admin/audit").status_code == 200


def test_admin_pages_are_refused_when_face_sign_in_is_off(make_app, new_user):
    app = make_app(face_enabled=False)
    new_user("root", is_admin=True)
    a = Browser(app)
    a.login("root")
    r = a.get("/admin/clients/")
    assert r.status_code == 403 and "face sign-in" in r.text


def test_destructive_admin_actions_need_confirmation(app, new_user, people):
    new_user("root", is_admin=True)
    a = _face_admin(app, people)
    db = get_db(app)
    from idp.oauth.clients import create_client
    doc, secret = create_client(db, app.config["IDP"], "Some RP", ["https://rp.example/cb"])
    cid = doc["client_id"]
    before = db.clients.find_one({"_id": cid})

    # Without confirm: a confirmation page, nothing done.
    r = a.form(f"/admin/clients/{cid}/delete", {}, page=f"/admin/clients/{cid}")
    assert r.status_code == 200 and 'id="confirm-delete"' in r.text and 'name="confirm" value="yes"' in r.text
    assert db.clients.find_one({"_id": cid}) == before
    r = a.form(f"/admin/clients/{cid}/rotate-secret", {}, page=f"/admin/clients/{cid}")
    assert r.status_code == 200 and 'id="confirm-rotate"' in r.text and "client-secret" not in r.text
    assert db.clients.find_one({"_id": cid}) == before
    # disabling ends every token and code of the client for good: it asks too
    r = a.form(f"/admin/clients/{cid}/disable", {}, page=f"/admin/clients/{cid}")
    assert r.status_code == 200 and 'id="confirm-disable"' in r.text and 'name="confirm" value="yes"' in r.text
    assert db.clients.find_one({"_id": cid}) == before
    # GET does nothing either, and the CSRF token is required.
    assert a.get(f"/admin/clients/{cid}/delete").status_code == 405
    assert a.client.post(f"/admin/clients/{cid}/delete", data={"confirm": "yes"}).status_code == 400
    assert db.clients.find_one({"_id": cid}) == before

    # Confirmed: done.
    r = a.form(f"/admin/clients/{cid}/rotate-secret", {"confirm": "yes"}, page=f"/admin/clients/{cid}")
    assert r.status_code == 200 and re.search(r'class="client-secret">([^<]+)<', r.text)
    r = a.form(f"/admin/clients/{cid}/delete", {"confirm": "yes"}, page=f"/admin/clients/{cid}")
    assert r.status_code == 302 and db.clients.count_documents({"_id": cid}) == 0

    # The face reset of a user is a destructive user action too.
    user = new_user("alice")
    r = a.form("/admin/face/reset", {"user_id": user["_id"]}, page="/admin/clients/new")
    assert r.status_code == 200 and 'id="confirm-face-reset"' in r.text
    assert not db.audit_log.find_one({"event": "face.reset"})
    r = a.form("/admin/face/reset", {"user_id": user["_id"], "confirm": "yes"}, page="/admin/clients/new")
    assert r.status_code == 302 and db.audit_log.find_one({"event": "face.reset"})
    assert db.face_status.find_one({"_id": user["_id"]})["reset"]["by"]
