"""Administrator actions on an account a deletion has claimed (``users._claim_deletion``, the deletion's first
step; it may be running now, in another request or the command line) write nothing under it: the erasure may
have passed the collections already, and an audit entry, a face-status or face-reset record written after it
outlived the account ("erase all of the user's data"). Only "Delete account" acts on it (to finish a deletion
that died); the command line's face commands refuse it the same way."""
from __future__ import annotations

import pytest

from .conftest import CSRF_INPUT, signed_in_admin

ACTIONS = ["disable", "enable", "unlock-face", "void-recovery-codes"]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_admin_action_on_an_account_being_deleted_writes_nothing_under_it(app, people, new_user, action):
    from idp import get_db
    from idp.accounts import users
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    assert users._claim_deletion(db, bob["_id"]) is not None
    page = admin.get(f"/admin/users/{bob['_id']}")
    assert page.status_code == 200 and "being deleted" in page.text
    token = CSRF_INPUT.search(page.text).group(1)
    r = admin.client.post(f"/admin/users/{bob['_id']}/{action}", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 302
    assert db.audit_log.count_documents({"user_id": bob["_id"]}) == 0
    assert db.face_status.find_one({"_id": bob["_id"]}) is None
    assert "being deleted" in admin.get(r.headers["Location"]).text


def test_a_face_reset_of_an_account_being_deleted_writes_nothing_under_it(app, people, new_user):
    from idp import get_db
    from idp.accounts import users
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    users._claim_deletion(db, bob["_id"])
    token = CSRF_INPUT.search(admin.get(f"/admin/users/{bob['_id']}").text).group(1)
    r = admin.client.post("/admin/face/reset", data={"csrf_token": token, "user_id": bob["_id"], "confirm": "yes"})
    assert r.status_code == 302
    assert db.audit_log.count_documents({"user_id": bob["_id"]}) == 0
    assert db.face_status.find_one({"_id": bob["_id"]}) is None
