"""A change of the email address that took effect can be undone from the previous, confirmed address. Before,
an intruder with a session (or the password) who owned the new mailbox confirmed it at once and so held the
account's password-reset channel; the owner's last notice offered no way back. Now that notice carries a
single-use link, valid for ``IDP_EMAIL_UNDO_WINDOW``, that restores the previous address, drops a pending
change, sets a new password and ends every session and app token. Real app, real database, real SMTP server;
every link is taken from the mail the server received."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from idp import audit, get_db
from tests.conftest import mail_link

from .conftest import GOOD_PASSWORD, Browser, csrf_token, stored_user

INTRUDER = "mallory@evil.example"
INTRUDER_PASSWORD = "mallory owns this account now"
OWNER_PASSWORD = "purple elephant violin sunrise"
UNDONE_SUBJECT = "The email address of your account was changed"


def _body(message) -> str:
    return message.get_payload(decode=True).decode().replace("\r\n", "\n")


def _mail(smtp_server, to: str, subject: str, timeout: float = 15.0):
    """The last mail received for ``to`` with ``subject`` (waiting for it)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in smtp_server.messages if m["To"] == to and m["Subject"] == subject]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, [(m["To"], m["Subject"]) for m in smtp_server.messages]
        smtp_server.wait_for(len(smtp_server.messages) + 1, timeout=max(0.1, deadline - time.monotonic()))


def _confirm(b, path):
    page = b.get(path)
    assert page.status_code == 200 and 'id="confirm-link"' in page.text
    return b.submit(path, {})


def _change_and_confirm(app, smtp_server, b: Browser, address: str, password: str) -> None:
    r = b.submit("/account/email", {"email": address, "current_password": password})
    assert r.status_code == 302, r.text[:300]
    r = _confirm(Browser(app.test_client()), mail_link(_mail(smtp_server, address, "Confirm your email address"),
                                                       "verify-email"))
    assert r.status_code == 200 and "now the email address of your account" in r.text
    assert stored_user(app)["email"] == address


def _owner_and_intruder(app, smtp_server) -> tuple[Browser, Browser]:
    """Alice registers and confirms her address; someone else signs in with her password (a second session)."""
    owner = Browser(app.test_client())
    assert owner.register().status_code == 302
    assert _confirm(owner, mail_link(smtp_server.wait_for(1)[0], "verify-email")).status_code == 200
    intruder = Browser(app.test_client(), remote_addr="203.0.113.9")
    assert intruder.login("alice", GOOD_PASSWORD).status_code == 302
    assert intruder.get("/account").status_code == 200
    return owner, intruder


def _taken_over(app, smtp_server) -> tuple[Browser, Browser, str]:
    """The intruder moves the address to their mailbox, confirms it at once and sets their own password; the
    path of the undo link in the notice the previous address received."""
    owner, intruder = _owner_and_intruder(app, smtp_server)
    _change_and_confirm(app, smtp_server, intruder, INTRUDER, GOOD_PASSWORD)
    notice = _mail(smtp_server, "alice@example.com", UNDONE_SUBJECT)
    r = intruder.submit("/account/password", {"current_password": GOOD_PASSWORD, "new_password": INTRUDER_PASSWORD,
                                              "confirm": INTRUDER_PASSWORD})
    assert r.status_code == 302
    return owner, intruder, mail_link(notice, "undo-email")


def _post(b: Browser, path: str, data: dict):
    """POST ``data`` with this browser's CSRF token (taken from the sign-in page: the link's page may show none)."""
    return b.client.post(path, data={"csrf_token": csrf_token(b.get("/login").text), **data}, environ_base=b.environ)


def _undo(b: Browser, path: str, password: str = OWNER_PASSWORD):
    return _post(b, path, {"new_password": password, "confirm": password})


def test_the_previous_address_undoes_the_change_with_the_link_it_received(mail_app, smtp_server):
    db = get_db(mail_app)
    owner, intruder, path = _taken_over(mail_app, smtp_server)
    body = _body(_mail(smtp_server, "alice@example.com", UNDONE_SUBJECT))
    assert "m***@evil.example" in body and INTRUDER not in body and "works once, until" in body
    # a pending change (one asked for before the window was enforced, or by an operator's edit) goes with the undo
    db.users.update_one({"email": INTRUDER}, {"$set": {"pending_email": "mallory2@evil.example"}})
    uid = stored_user(mail_app)["_id"]
    sessions_before = db.sessions.count_documents({"data.auth.uid": uid})
    assert sessions_before >= 1  # the intruder's (its password change ended the others)

    # opening the link (a mail scanner, a preview) changes nothing
    restorer = Browser(mail_app.test_client(), remote_addr="198.51.100.7")
    for _ in range(2):
        page = restorer.get(path)
        assert page.status_code == 200 and 'id="undo-email"' in page.text and "alice@example.com" in page.text
        assert 'name="csrf_token"' in page.text
    user = stored_user(mail_app)
    assert (user["email"], user.get("pending_email")) == (INTRUDER, "mallory2@evil.example")
    assert db.sessions.count_documents({"data.auth.uid": uid}) == sessions_before
    assert intruder.get("/account").status_code == 200
    # a POST without the form's CSRF token is refused and changes nothing
    r = restorer.client.post(path, data={"new_password": OWNER_PASSWORD, "confirm": OWNER_PASSWORD},
                             environ_base=restorer.environ)
    assert r.status_code == 400 and stored_user(mail_app)["email"] == INTRUDER

    r = _undo(restorer, path)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    user = stored_user(mail_app)
    assert (user["email"], user["email_verified"], user.get("pending_email")) == ("alice@example.com", True, None)
    from idp.accounts.users import email_skeleton
    assert user["email_skeleton"] == email_skeleton("alice@example.com")  # (what lookalikes are compared with)
    assert db.sessions.count_documents({"data.auth.uid": uid}) == 0
    assert intruder.get("/account").status_code == 302
    # the intruder's password and the original one are gone; the new one works, also by the restored address
    assert Browser(mail_app.test_client()).login("alice", INTRUDER_PASSWORD).status_code == 200
    assert Browser(mail_app.test_client()).login("alice", GOOD_PASSWORD).status_code == 200
    assert Browser(mail_app.test_client()).login("alice@example.com", OWNER_PASSWORD).status_code == 302
    # reset links go to the restored address
    Browser(mail_app.test_client()).submit("/forgot", {"login": "alice"})
    assert _mail(smtp_server, "alice@example.com", "Reset your password")
    assert not [m for m in smtp_server.messages if m["To"] == INTRUDER and m["Subject"] == "Reset your password"]
    # one audit event, and the restored address is told
    (entry,) = db.audit_log.find({"event": audit.EMAIL_CHANGE_UNDONE})
    assert entry["user_id"] == uid
    assert {k: entry["details"][k] for k in ("restored_email", "new_email", "dropped_pending")} == {
        "restored_email": "alice@example.com", "new_email": INTRUDER, "dropped_pending": "mallory2@evil.example"}
    assert entry["details"]["sessions_ended"] == sessions_before
    assert _mail(smtp_server, "alice@example.com", "The change of your email address was undone")

    # the link works once
    again = Browser(mail_app.test_client())
    assert again.get(path).status_code == 400
    r = _undo(again, path, "another fine password here")
    assert r.status_code == 400 and "already used" in r.text
    assert Browser(mail_app.test_client()).login("alice", OWNER_PASSWORD).status_code == 302


def test_a_forged_or_expired_undo_link_is_refused_with_a_clear_page(make_app, smtp_server):
    app = make_app(smtp_url=smtp_server.url, email_undo_window_s=3 * 86400)
    db = get_db(app)
    _, _, path = _taken_over(app, smtp_server)
    # the link is stored only as a hash, valid for the configured window
    token = path.rsplit("/", 1)[1]
    (doc,) = db.email_tokens.find({"purpose": "undo_email_change"})
    assert doc["_id"] != token and token not in str(doc)
    lifetime = doc["expires"].replace(tzinfo=timezone.utc) - doc["created"].replace(tzinfo=timezone.utc)
    assert lifetime == timedelta(days=3)

    b = Browser(app.test_client())
    for forged in ("/undo-email/" + "A" * 43, "/undo-email/x", "/undo-email/" + token[:-1] + "B"):
        r = b.get(forged)
        assert r.status_code == 400 and "This link is not valid" in r.text, forged
    db.email_tokens.update_one({"_id": doc["_id"]},
                               {"$set": {"expires": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    r = b.get(path)
    assert r.status_code == 400 and "its time to undo the change has passed" in r.text
    assert _undo(b, path).status_code == 400
    assert stored_user(app)["email"] == INTRUDER
    assert db.audit_log.count_documents({"event": audit.EMAIL_CHANGE_UNDONE}) == 0


def test_no_second_change_moves_the_undo_link_to_the_intruders_mailbox(mail_app, smtp_server):
    """Before, the intruder confirmed a second mailbox of their own: its undo link went to their first one, and
    the owner's link stopped working (it fits only while the address it undoes is the account's). Now, while the
    previous address can undo a change, no other change is taken; the owner's link keeps working."""
    db = get_db(mail_app)
    _, intruder, path = _taken_over(mail_app, smtp_server)
    r = intruder.submit("/account/email", {"email": "mallory2@evil.example", "current_password": INTRUDER_PASSWORD})
    assert r.status_code == 409 and "cannot be changed again" in r.text, r.text[:300]
    user = stored_user(mail_app)
    assert (user["email"], user.get("pending_email")) == (INTRUDER, None)
    assert not [m for m in smtp_server.messages if m["To"] == "mallory2@evil.example"]
    assert _undo(Browser(mail_app.test_client()), path).status_code == 302
    assert stored_user(mail_app)["email"] == "alice@example.com"
    # the owner, signed in again with the new password, may change the address at once: the undo ended the wait
    owner = Browser(mail_app.test_client())
    assert owner.login("alice", OWNER_PASSWORD).status_code == 302
    assert owner.submit("/account/email", {"email": "alice2@example.com", "current_password": OWNER_PASSWORD}
                        ).status_code == 302
    assert db.users.find_one({"username": "alice"})["pending_email"] == "alice2@example.com"


def test_once_the_window_passed_another_change_is_taken_and_the_old_link_fails_closed(mail_app, smtp_server):
    db = get_db(mail_app)
    _, intruder, path = _taken_over(mail_app, smtp_server)
    # the change took effect longer ago than the window (its link is still there: the guard of fits() alone)
    db.users.update_one({"email": INTRUDER}, {"$set": {"email_changed_at": datetime.now(timezone.utc) - timedelta(
        days=8)}})
    _change_and_confirm(mail_app, smtp_server, intruder, "mallory2@evil.example", INTRUDER_PASSWORD)
    b = Browser(mail_app.test_client())
    assert b.get(path).status_code == 400
    r = _undo(b, path)
    assert r.status_code == 400 and "changed again" in r.text
    assert stored_user(mail_app)["email"] == "mallory2@evil.example"


def test_the_intruder_cannot_take_the_previous_address_to_block_the_undo(mail_app, smtp_server):
    """The previous address is free once the change took effect: the intruder registered another account with it
    (or moved a never-confirmed account of theirs to it), and the owner's link then only answered 409 for good.
    While the link can undo the change the address is held for the account it left."""
    _, intruder, path = _taken_over(mail_app, smtp_server)
    r = Browser(mail_app.test_client(), remote_addr="203.0.113.9").register(username="eve", email="alice@example.com")
    assert r.status_code == 200 and "An account with this email address already exists" in r.text, r.status_code
    assert stored_user(mail_app, "eve") is None
    other = Browser(mail_app.test_client(), remote_addr="203.0.113.10")
    assert other.register(username="mallory", email="mallory3@evil.example").status_code == 302
    r = other.submit("/account/email", {"email": "alice@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 200 and "An account with this email address already exists" in r.text, r.status_code
    assert stored_user(mail_app, "mallory")["email"] == "mallory3@evil.example"
    assert _undo(Browser(mail_app.test_client()), path).status_code == 302
    assert stored_user(mail_app)["email"] == "alice@example.com"
    # restored: the address is the account's own again, and the hold is gone with the change
    user = stored_user(mail_app)
    assert "email_held_until" not in user and "email_changed_from" not in user
    # the hold is looked up through an index (migration 0016), not by reading every account
    indexes = get_db(mail_app).users.index_information()
    assert any(ix["key"] == [("email_changed_from", 1)] for ix in indexes.values()), indexes


def test_an_address_another_account_took_meanwhile_is_not_restored(mail_app, smtp_server):
    _, intruder, path = _taken_over(mail_app, smtp_server)
    # the previous address is held while the link can undo the change (the test above); a change that took effect
    # before the hold existed has none, and another account registers with the address
    get_db(mail_app).users.update_one({"email": INTRUDER}, {"$unset": {"email_held_until": ""}})
    assert Browser(mail_app.test_client()).register(username="eve", email="alice@example.com").status_code == 302
    b = Browser(mail_app.test_client())
    r = b.get(path)
    assert r.status_code == 409 and "Another account uses alice@example.com now" in r.text
    r = _undo(b, path)
    assert r.status_code == 409 and "Nothing was changed" in r.text
    assert stored_user(mail_app)["email"] == INTRUDER
    assert intruder.get("/account").status_code == 200  # nothing ended
    # the link stays usable: once the address is free again it restores it
    from idp.accounts import users
    users.delete_user(get_db(mail_app), stored_user(mail_app, "eve")["_id"])
    assert _undo(Browser(mail_app.test_client()), path).status_code == 302
    assert stored_user(mail_app)["email"] == "alice@example.com"


def test_the_intruders_password_reset_does_not_void_the_link_and_a_weak_password_is_refused(mail_app, smtp_server):
    _, _, path = _taken_over(mail_app, smtp_server)
    # the intruder resets the password through their mailbox as well (it ends every session and reset link)
    intruder = Browser(mail_app.test_client(), remote_addr="203.0.113.9")
    assert intruder.submit("/forgot", {"login": INTRUDER}).status_code == 200
    reset = mail_link(_mail(smtp_server, INTRUDER, "Reset your password"), "reset")
    assert intruder.submit(reset, {"new_password": "mallory resets it again", "confirm": "mallory resets it again"}
                           ).status_code == 302
    b = Browser(mail_app.test_client())
    r = _undo(b, path, "alice")
    assert r.status_code == 200 and 'id="undo-email"' in r.text
    assert stored_user(mail_app)["email"] == INTRUDER
    assert _undo(b, path).status_code == 302
    assert stored_user(mail_app)["email"] == "alice@example.com"


def test_the_request_log_names_the_route_never_the_undo_token(mail_app, smtp_server, caplog):
    import logging
    _, _, path = _taken_over(mail_app, smtp_server)
    mail_app.config["IDP_ACCESS_LOG"] = True
    with caplog.at_level(logging.INFO, logger="idp.request"):
        assert Browser(mail_app.test_client()).get(path).status_code == 200
    logged = [r for r in caplog.records if r.name == "idp.request"]
    assert [r.path for r in logged] == ["/undo-email/<token>"]
    assert path.rsplit("/", 1)[1] not in caplog.text + " ".join(str(r.__dict__) for r in logged)
