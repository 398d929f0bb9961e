"""A signed-in account page used while an administrator deletes the account leaves nothing under the deleted
account, and the browser is signed out. The pages check, before their writes, that the account may still sign
in; a deletion that claimed it after that check and erased it while the page wrote left the page's audit entry,
the owner's notice (mail outbox) and a fresh confirmation link under the deleted account's id. Every request
made for an account now reads it again after the view (``idp.accounts.current.erased_meanwhile``). Real app,
real database, real SMTP server; the deletion runs, for real, in another thread, held just before it removes
the account document until the view is done (``_race``, as for the emailed links)."""
from __future__ import annotations

from idp.accounts import emailviews
from tests.accounts.test_email_change_pending import _confirmed_alice

from .conftest import GOOD_PASSWORD, Browser, csrf_token, stored_user
from .test_links_used_during_an_account_deletion import _nothing_left, _race


def _signed_out(r, b: Browser) -> None:
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/login"), (r.status_code, r.headers)
    page = b.get("/account")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login"), page.status_code


def test_a_password_change_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server, monkeypatch):
    owner = _confirmed_alice(mail_app, smtp_server)
    db, uid = mail_app.extensions["db"], stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "set_password")
    new = "a brand new password here"
    r = owner.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": new, "confirm": new})
    view_done.set()
    deleter["thread"].join(30)
    _nothing_left(db, uid)
    _signed_out(r, owner)


def test_an_email_change_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server, monkeypatch):
    owner = _confirmed_alice(mail_app, smtp_server)
    db, uid = mail_app.extensions["db"], stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "request_email_change")
    r = owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD})
    view_done.set()
    deleter["thread"].join(30)
    _nothing_left(db, uid)
    _signed_out(r, owner)


def test_a_confirmation_link_asked_again_during_the_deletion_leaves_nothing_of_the_account(mail_app, smtp_server,
                                                                                            monkeypatch):
    owner = Browser(mail_app.test_client())
    assert owner.register().status_code == 302
    smtp_server.wait_for(1)
    db, uid = mail_app.extensions["db"], stored_user(mail_app)["_id"]
    view_done, deleter = _race(monkeypatch, db, uid, "send_verification", module=emailviews)
    page = owner.get("/account")
    assert page.status_code == 200, page.status_code
    r = owner.client.post("/verify-email/resend", data={"csrf_token": csrf_token(page.text)})
    view_done.set()
    deleter["thread"].join(30)
    _nothing_left(db, uid)
    _signed_out(r, owner)


def test_another_accounts_deletion_signs_nobody_out(make_app, smtp_server):
    """The browser keeps the account an unconfirmed sign-in was refused for (to resend its link); another account
    signed in there afterwards stays signed in when the first one is deleted: only the session's own account's
    deletion signs it out (the first one is forgotten, and nothing of it is left)."""
    from idp.accounts import users
    app = make_app(smtp_url=smtp_server.url, require_verified_email=True)
    db = app.extensions["db"]
    xavier = users.create_user(db, "xavier", "xavier@example.com", GOOD_PASSWORD)
    yvonne = users.create_user(db, "yvonne", "yvonne@example.com", GOOD_PASSWORD)
    db.users.update_one({"_id": yvonne["_id"]}, {"$set": {"email_verified": True}})
    b = Browser(app.test_client())
    assert b.login("xavier", GOOD_PASSWORD).status_code == 403  # unconfirmed: the page offers to resend
    assert b.login("yvonne", GOOD_PASSWORD).status_code == 302
    assert b.get("/account").status_code == 200
    assert users.delete_user(db, xavier["_id"]) is not None
    page = b.get("/account")
    assert page.status_code == 200 and "yvonne" in page.text, page.status_code
    assert b.get("/account").status_code == 200
    assert not db.audit_log.find_one({"user_id": xavier["_id"]})
