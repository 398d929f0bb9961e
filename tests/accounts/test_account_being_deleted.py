"""An account whose deletion has started (``delete_user`` claims it, then erases collection by collection) is
answered as no account at all: the password step gives the wrong-password answer and writes no session,
"Forgot password?" mails no link, and a reset or verification link mailed before does nothing. Before, the
claim was read by nothing: the account signed in during its erasure and left sessions, codes and tokens made
after the erasure had passed them. A claim whose process died (older than ``DELETE_CLAIM_S``) still refuses:
the account stays refused until the deletion is run again, which finishes it. Real app, real database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from idp.accounts import emaillinks, users

from .conftest import GOOD_PASSWORD, Browser, alert

INVALID = "Invalid username or password."


def _claimed(app, username="alice", *, stale=False):
    """A user whose deletion has claimed it and not finished (running, or its process died if ``stale``)."""
    db = app.extensions["db"]
    user = users.create_user(db, username, f"{username}@example.com", GOOD_PASSWORD)
    assert users._claim_deletion(db, user["_id"])["deleting"]["claim"]
    if stale:
        db.users.update_one({"_id": user["_id"]}, {"$set": {
            "deleting.at": datetime.now(timezone.utc) - timedelta(seconds=users.DELETE_CLAIM_S + 1)}})
    return db, user


def _signed_in_sessions(db, uid) -> int:
    return db.sessions.count_documents({"data.auth.uid": uid})


def test_the_password_step_answers_an_account_being_deleted_as_a_wrong_password(app):
    db, user = _claimed(app)
    other = Browser(app.test_client())
    wrong = other.login("alice", "not the password at all")
    right = Browser(app.test_client()).login("alice", GOOD_PASSWORD)
    by_email = Browser(app.test_client()).login("alice@example.com", GOOD_PASSWORD)
    for r in (wrong, right, by_email):
        assert r.status_code == 200 and alert(r.text) == INVALID, (r.status_code, r.headers.get("Location"))
    assert _signed_in_sessions(db, user["_id"]) == 0
    assert db.audit_log.count_documents({"event": "account.login"}) == 0
    # nothing is written under the account while it is being erased (its failures count as an unknown name's)
    assert db.audit_log.count_documents({"user_id": user["_id"]}) == 0
    assert db.throttles.count_documents({"_id": f"pwd:user:{user['_id']}"}) == 0


def test_a_stale_claim_still_refuses_until_the_deletion_is_run_again(app):
    """The deletion's process died: its claim is older than DELETE_CLAIM_S. The account does not come back
    (half erased, it would sign in without its face data or audit trail); running the deletion again takes the
    claim over and finishes, and the name is then unknown."""
    db, user = _claimed(app, stale=True)
    r = Browser(app.test_client()).login("alice", GOOD_PASSWORD)
    assert r.status_code == 200 and alert(r.text) == INVALID
    assert _signed_in_sessions(db, user["_id"]) == 0
    assert users.delete_user(db, user["_id"])["users"] == 1
    r = Browser(app.test_client()).login("alice", GOOD_PASSWORD)
    assert r.status_code == 200 and alert(r.text) == INVALID


def test_an_account_that_is_not_being_deleted_signs_in(app):
    """The same steps without a claim sign in (so the refusals above are the claim's doing)."""
    db = app.extensions["db"]
    user = users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    r = Browser(app.test_client()).login("alice", GOOD_PASSWORD)
    assert r.status_code == 302 and _signed_in_sessions(db, user["_id"]) == 1


def test_forgot_password_mails_no_link_for_an_account_being_deleted(app):
    db, user = _claimed(app)
    r = Browser(app.test_client()).submit("/forgot", {"login": "alice"})
    unknown = Browser(app.test_client()).submit("/forgot", {"login": "nobody-here"})
    assert r.status_code == unknown.status_code == 200
    assert "If an account with that name or address exists" in r.text
    assert db.email_tokens.count_documents({"user_id": user["_id"]}) == 0
    assert db.mail_outbox.count_documents({"user_id": user["_id"]}) == 0
    assert db.audit_log.count_documents({"user_id": user["_id"]}) == 0


def test_links_mailed_before_the_deletion_do_nothing_once_it_has_claimed_the_account(app):
    db = app.extensions["db"]
    user = users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    reset = emaillinks.issue(db, emaillinks.RESET, user["_id"], user["email"],
                             password_hash=user["password_hash"])
    verify = emaillinks.issue(db, emaillinks.VERIFY, user["_id"], user["email"])
    users._claim_deletion(db, user["_id"])
    b = Browser(app.test_client())
    r = b.client.get(f"/reset/{reset}")
    assert r.status_code == 400
    r = b.submit(f"/verify-email/{verify}", {})
    assert r.status_code == 400
    stored = db.users.find_one({"_id": user["_id"]})
    assert stored["password_hash"] == user["password_hash"] and not stored["email_verified"]
    assert db.audit_log.count_documents({"user_id": user["_id"]}) == 0


def test_a_session_signed_in_before_the_claim_opens_no_account_page(app):
    """The window between a deletion's claim and the erasure of the account's sessions (or a deletion whose
    process died before it): a session signed in before the claim could still change the email (a token
    and an audit entry written under the account) and the password. Now it opens no page (``signed_in_uid``
    asks ``usable_user``), and its first request after the claim ends it (``current.erased_meanwhile``)."""
    from .conftest import csrf_token

    db = app.extensions["db"]
    user = users.create_user(db, "alice", "alice@example.com", GOOD_PASSWORD)
    browsers = {}
    for path in ("/account/email", "/account/password", "/account"):
        b = browsers[path] = Browser(app.test_client())
        assert b.login("alice", GOOD_PASSWORD).status_code == 302
        b.token = csrf_token(b.get("/account/email").text)
    users._claim_deletion(db, user["_id"])
    audit_before = db.audit_log.count_documents({"user_id": user["_id"]})
    assert browsers["/account"].get("/account").status_code == 302
    b = browsers["/account/email"]
    r = b.client.post("/account/email", environ_base=b.environ, data={
        "csrf_token": b.token, "email": "new@example.com", "current_password": GOOD_PASSWORD})
    assert r.status_code == 302 and "/account" not in r.headers["Location"]
    b = browsers["/account/password"]
    r = b.client.post("/account/password", environ_base=b.environ, data={
        "csrf_token": b.token, "current_password": GOOD_PASSWORD,
        "new_password": "An0ther-Long-Passphrase!", "confirm": "An0ther-Long-Passphrase!"})
    assert r.status_code == 302 and "/account" not in r.headers["Location"]
    assert db.email_tokens.count_documents({"user_id": user["_id"]}) == 0
    assert audit_before > 0 and db.audit_log.count_documents({"user_id": user["_id"]}) == 0  # (what a deletion erases)
    assert db.users.find_one({"_id": user["_id"]})["password_hash"] == user["password_hash"]


def test_the_credential_check_refuses_an_account_being_deleted(app):
    """``users.authenticate`` (the plain credential check of tools and tests) answers as the password step does."""
    db, user = _claimed(app)
    assert users.authenticate(db, "alice", GOOD_PASSWORD) is None
    assert users.authenticate(db, "alice@example.com", GOOD_PASSWORD) is None
    other = users.create_user(db, "bob", "bob@example.com", GOOD_PASSWORD)
    assert users.authenticate(db, "bob", GOOD_PASSWORD)["_id"] == other["_id"]
