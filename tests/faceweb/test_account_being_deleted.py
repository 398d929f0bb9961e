"""The face step and enrollment make nothing for an account whose deletion has started (``delete_user`` has
claimed it and is erasing its face data): a session that passed the password step before (or while) the claim
was set gets no capture and is sent back to the password step, which refuses the account. Before, the claim
was read by nothing and a capture (and then a template) could be stored after the erasure had passed it.
Real app, real database, real face engine."""
from __future__ import annotations

from faceweb.conftest import Browser, app, engine, make_app, new_user  # noqa: F401  (fixtures)
from idp import get_db
from idp.accounts import users


def test_no_capture_for_a_session_of_an_account_being_deleted(app, new_user):
    user = new_user("alice")
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    b.consent()
    users._claim_deletion(db, user["_id"])
    r = b.start("enroll")
    assert r.status_code == 401 and r.get_json()["error"] == "login_required", r.get_json()
    assert db.capture_sessions.count_documents({"user_id": user["_id"]}) == 0
    r = b.get("/face/enroll")  # the session forgot the sign-in: back to the password step (no redirect loop)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login"), r.headers.get("Location")


def test_the_same_session_captures_when_no_deletion_runs(app, new_user):
    b = Browser(app)
    new_user("alice")
    b.login("alice")
    b.consent()
    assert b.start("enroll").status_code == 201
