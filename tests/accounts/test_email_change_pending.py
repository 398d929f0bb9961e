"""A change of a confirmed email address waits for the link sent to the new address. Until it is used, the
confirmed address stays the account's: for signing in by address, for password-reset links and for the owner's
notices. Before, the form replaced the address at once, unconfirmed: whoever briefly held a session (or the
password) typed their own address and from then on received the owner's notices and reset links. The confirmed
address is told of the request and, once the new address is confirmed, of the change. Real app, real database,
real SMTP server."""
from __future__ import annotations

import time

from idp import audit, get_db
from tests.conftest import mail_link

from .conftest import GOOD_PASSWORD, Browser, field_errors, stored_user

INTRUDER = "mallory@evil.example"
NEW_PASSWORD = "purple elephant violin sunrise"


def _confirm(b, path):
    page = b.get(path)
    assert page.status_code == 200 and 'id="confirm-link"' in page.text
    return b.submit(path, {})


def _body(message) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def _mails(smtp_server, count, settle=0.5):
    """The first ``count`` mails received, after a moment in which no more should arrive."""
    smtp_server.wait_for(count)
    time.sleep(settle)
    assert len(smtp_server.messages) == count, [(m["To"], m["Subject"]) for m in smtp_server.messages]
    return list(smtp_server.messages)


def _confirmed_alice(app, smtp_server) -> Browser:
    owner = Browser(app.test_client())
    assert owner.register().status_code == 302
    assert _confirm(owner, mail_link(smtp_server.wait_for(1)[0], "verify-email")).status_code == 200
    assert stored_user(app)["email_verified"] is True
    return owner


def _intruder_changed_the_address(app, smtp_server) -> Browser:
    """Someone at the owner's signed-in browser (or with the password) types their own address."""
    intruder = _confirmed_alice(app, smtp_server)
    r = intruder.submit("/account/email", {"email": INTRUDER, "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    mails = _mails(smtp_server, 3)[1:]  # the confirmation link to the new address, the confirmed one's notice
    assert sorted(m["To"] for m in mails) == ["alice@example.com", INTRUDER]
    return intruder


def test_reset_links_stay_with_the_confirmed_address_until_the_new_one_is_confirmed(mail_app, smtp_server):
    _intruder_changed_the_address(mail_app, smtp_server)
    # a password-reset link asked for by username goes to the confirmed address, not the unconfirmed new one
    assert Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"}).status_code == 200
    reset = _mails(smtp_server, 4)[3]
    assert reset["Subject"] == "Reset your password" and reset["To"] == "alice@example.com"
    # typed as the new address it finds no account: no link to anyone
    assert Browser(mail_app.test_client()).submit("/forgot", {"login": INTRUDER}).status_code == 200
    _mails(smtp_server, 4)
    # and the account signs in with its confirmed address, not with the pending one
    assert Browser(mail_app.test_client()).login(INTRUDER, GOOD_PASSWORD).status_code == 200
    assert Browser(mail_app.test_client()).login("alice@example.com", GOOD_PASSWORD).status_code == 302


def test_notices_stay_with_the_confirmed_address_until_the_new_one_is_confirmed(mail_app, smtp_server):
    db = mail_app.extensions["db"]
    intruder = _intruder_changed_the_address(mail_app, smtp_server)
    # the owner's notices: a password change, a deletion of face data
    r = intruder.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                              "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    uid = stored_user(mail_app)["_id"]
    audit.record(db, audit.FACE_DELETE, user_id=uid, decision="deleted")
    notices = _mails(smtp_server, 5)[3:]
    assert sorted(m["Subject"] for m in notices) == ["Your face sign-in data was deleted",
                                                     "Your password was changed"]
    assert [m["To"] for m in notices] == ["alice@example.com"] * 2


def test_the_confirmed_address_is_told_of_the_request_and_then_of_the_change(mail_app, smtp_server):
    from idp.oauth.models import UserRef
    from idp.oauth.server import user_claims
    owner = _confirmed_alice(mail_app, smtp_server)
    r = owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    user = stored_user(mail_app)
    assert (user["email"], user["email_verified"], user["pending_email"]) == ("alice@example.com", True,
                                                                            "new@example.com")
    # apps keep seeing the confirmed address
    claims = user_claims(UserRef(user["_id"], user), "openid email")
    assert (claims["email"], claims["email_verified"]) == ("alice@example.com", True)
    page = owner.get("/account").text
    assert "(verified)" in page and 'id="email-pending"' in page and "new@example.com" in page

    mails = _mails(smtp_server, 3)[1:]
    (request,) = [m for m in mails if m["To"] == "alice@example.com"]
    (link,) = [m for m in mails if m["To"] == "new@example.com"]
    assert request["Subject"] == "A change of your email address was requested"
    body = _body(request)
    assert body.startswith("Hello Alice Example,\n")
    assert "n***@example.com" in body and "new@example.com" not in body  # masked
    assert "/verify-email/" not in body and "/reset/" not in body  # no secret in it
    assert _body(link).startswith("Hello,\n")  # an unconfirmed address: nobody named

    r = _confirm(Browser(mail_app.test_client()), mail_link(link, "verify-email"))
    assert r.status_code == 200 and "now the email address of your account" in r.text
    user = stored_user(mail_app)
    assert (user["email"], user["email_verified"], user.get("pending_email")) == ("new@example.com", True, None)
    final = _mails(smtp_server, 4)[3]
    assert final["To"] == "alice@example.com"
    assert final["Subject"] == "The email address of your account was changed"
    assert "n***@example.com" in _body(final) and "new@example.com" not in _body(final)
    # from now on the new address is the account's
    assert Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"}).status_code == 200
    assert _mails(smtp_server, 5)[4]["To"] == "new@example.com"
    assert owner.login("new@example.com", GOOD_PASSWORD).status_code == 302
    db = mail_app.extensions["db"]
    events = [d["event"] for d in db.audit_log.find({"user_id": user["_id"]}).sort("at", 1)]
    assert events.index(audit.EMAIL_CHANGE_REQUESTED) < events.index(audit.EMAIL_CHANGED)


def test_a_password_reset_from_the_confirmed_mailbox_cancels_the_pending_change(mail_app, smtp_server):
    intruder = _confirmed_alice(mail_app, smtp_server)
    assert intruder.submit("/account/email", {"email": INTRUDER, "current_password": GOOD_PASSWORD}).status_code == 302
    (link,) = [m for m in _mails(smtp_server, 3) if m["To"] == INTRUDER]
    owner = Browser(mail_app.test_client())
    owner.submit("/forgot", {"login": "alice@example.com"})
    reset = _mails(smtp_server, 4)[3]
    assert reset["To"] == "alice@example.com"
    r = owner.submit(mail_link(reset, "reset"), {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302
    assert "pending_email" not in stored_user(mail_app)
    # the intruder's link does nothing now
    assert Browser(mail_app.test_client()).get(mail_link(link, "verify-email")).status_code == 400
    assert stored_user(mail_app)["email"] == "alice@example.com"
    assert intruder.get("/account").status_code == 302  # signed out by the reset


def test_a_password_change_cancels_the_pending_change(mail_app, smtp_server):
    """The owner securing the account with a new password (after the notice of a change they did not ask for)
    ends the change asked for with the old one: its link does nothing, the address stays, and it is audited."""
    owner = _intruder_changed_the_address(mail_app, smtp_server)
    (link,) = [m for m in smtp_server.messages if m["To"] == INTRUDER]
    r = owner.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": NEW_PASSWORD,
                                           "confirm": NEW_PASSWORD})
    assert r.status_code == 302, r.text[:300]
    assert "pending_email" not in stored_user(mail_app)
    assert Browser(mail_app.test_client()).get(mail_link(link, "verify-email")).status_code == 400
    assert stored_user(mail_app)["email"] == "alice@example.com"
    entry = get_db(mail_app).audit_log.find_one({"event": audit.EMAIL_CHANGE_CANCELLED})
    assert entry["details"] == {"reason": "password_changed", "new_email": INTRUDER}
    assert "was cancelled" in owner.get("/account").text


def test_asking_for_the_current_address_cancels_and_a_newer_request_replaces_the_pending_one(mail_app, smtp_server):
    owner = _confirmed_alice(mail_app, smtp_server)
    assert owner.submit("/account/email", {"email": "one@example.com", "current_password": GOOD_PASSWORD}
                        ).status_code == 302
    assert owner.submit("/account/email", {"email": "two@example.com", "current_password": GOOD_PASSWORD}
                        ).status_code == 302
    assert stored_user(mail_app)["pending_email"] == "two@example.com"
    mails = _mails(smtp_server, 5)
    (first,) = [m for m in mails if m["To"] == "one@example.com"]
    (second,) = [m for m in mails if m["To"] == "two@example.com"]
    assert Browser(mail_app.test_client()).get(mail_link(first, "verify-email")).status_code == 400
    # dropping a change by its address leaves a newer one standing
    from idp.accounts import users
    db, uid = mail_app.extensions["db"], stored_user(mail_app)["_id"]
    assert users.cancel_email_change(db, uid, "one@example.com") is None
    assert stored_user(mail_app)["pending_email"] == "two@example.com"

    r = owner.submit("/account/email", {"email": "Alice@Example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    assert "pending_email" not in stored_user(mail_app)
    assert Browser(mail_app.test_client()).get(mail_link(second, "verify-email")).status_code == 400
    # with nothing pending, the current address is refused as before
    r = owner.submit("/account/email", {"email": "alice@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and "already your email address" in field_errors(r.text)["email"][0]
    _mails(smtp_server, 5)  # no notice for a cancellation


def test_an_address_taken_before_the_link_is_used_is_refused_with_409_and_nothing_changes(mail_app, smtp_server):
    owner = _confirmed_alice(mail_app, smtp_server)
    # a pending address reserves nothing, and another account's address is refused when asked for
    r = owner.submit("/account/email", {"email": "bob@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 302
    (link,) = [m for m in _mails(smtp_server, 3) if m["To"] == "bob@example.com"]
    assert Browser(mail_app.test_client()).register(username="bob").status_code == 302
    r = _confirm(Browser(mail_app.test_client()), mail_link(link, "verify-email"))
    assert r.status_code == 409 and "Another account uses this email address" in r.text
    user = stored_user(mail_app)
    assert (user["email"], user["email_verified"], user.get("pending_email")) == ("alice@example.com", True, None)
    r = owner.submit("/account/email", {"email": "bob@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and "already exists" in field_errors(r.text)["email"][0]


def test_an_account_that_never_confirmed_its_address_changes_it_at_once(mail_app, smtp_server):
    """Nothing to protect yet: the unconfirmed address is replaced, as before, and reset links go to it."""
    owner = Browser(mail_app.test_client())
    owner.register()
    first = mail_link(smtp_server.wait_for(1)[0], "verify-email")
    assert owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD}
                        ).status_code == 302
    user = stored_user(mail_app)
    assert (user["email"], user["email_verified"], user.get("pending_email")) == ("new@example.com", False, None)
    mails = _mails(smtp_server, 2)  # the new address's link; no notice to an address nobody confirmed
    assert mails[1]["To"] == "new@example.com"
    assert Browser(mail_app.test_client()).get(first).status_code == 400
    Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"})
    assert _mails(smtp_server, 3)[2]["To"] == "new@example.com"
    assert _confirm(owner, mail_link(mails[1], "verify-email")).status_code == 200
    assert stored_user(mail_app)["email_verified"] is True


def test_the_resend_button_mails_the_pending_address(mail_app, smtp_server):
    from .conftest import csrf_token
    owner = _confirmed_alice(mail_app, smtp_server)
    owner.submit("/account/email", {"email": "new@example.com", "current_password": GOOD_PASSWORD})
    _mails(smtp_server, 3)
    page = owner.get("/account").text
    assert 'id="resend-verification"' in page
    r = owner.client.post("/verify-email/resend", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 200 and "new@example.com" in r.text
    again = _mails(smtp_server, 4)[3]
    assert again["To"] == "new@example.com" and again["Subject"] == "Confirm your email address"
    assert _confirm(owner, mail_link(again, "verify-email")).status_code == 200
    assert stored_user(mail_app)["email"] == "new@example.com"
