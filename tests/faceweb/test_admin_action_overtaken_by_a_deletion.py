"""An administrator's action on an account that a deletion claims after the action checked the account (another
administrator, ``idp users delete``) keeps nothing under it: the erasure may have passed the audit log, the mail
outbox and the face status before the action wrote there, and what it wrote then outlived the account ("erase all
of the user's data"). The deletion is run at the moment the action has checked the account and is about to write
(its confirmation read, or its first step after it): finished by then, or claimed and still erasing."""
from __future__ import annotations

import pytest

from .conftest import CSRF_INPUT, signed_in_admin

# (path of the action under /admin, module and name of the step it takes right after checking the account)
ACTIONS = {
    "disable": ("/users/{uid}/disable", "idp.admin.views", "confirmed"),
    "enable": ("/users/{uid}/enable", "idp.admin.users", "forget_user"),
    "unlock-face": ("/users/{uid}/unlock-face", "idp.admin.views", "confirmed"),
    "void-recovery-codes": ("/users/{uid}/void-recovery-codes", "idp.admin.views", "confirmed"),
    "face-reset": ("/face/reset", "idp.admin.views", "confirmed"),
}


def _deletion(db, uid: str, how: str) -> None:
    from idp.accounts import users
    if how == "finished":
        assert users.delete_user(db, uid) is not None
    else:  # claimed; its erasure has passed the collections (as one that is running, or died, may have)
        assert users._claim_deletion(db, uid) is not None
        for name in ("audit_log", "mail_outbox"):
            db[name].delete_many({"user_id": uid})
        db.face_status.delete_one({"_id": uid})


@pytest.mark.parametrize("how", ["finished", "claimed"])
@pytest.mark.parametrize("action", ACTIONS, ids=ACTIONS)
def test_an_admin_action_a_deletion_overtakes_keeps_nothing_under_the_account(app, people, new_user, monkeypatch,
                                                                             action, how):
    import importlib

    from idp import get_db
    db = get_db(app)
    admin = signed_in_admin(app, people["alice"])
    bob = new_user("bob")
    db.face_status.insert_one({"_id": bob["_id"], "failures": 5, "locked_at": None})
    path, module, step = ACTIONS[action]
    token = CSRF_INPUT.search(admin.get(f"/admin/users/{bob['_id']}").text).group(1)

    module = importlib.import_module(module)
    real, ran = getattr(module, step), []

    def deletion_meanwhile(*args, **kwargs):
        if not ran:
            ran.append(True)
            _deletion(db, bob["_id"], how)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, step, deletion_meanwhile)

    r = admin.client.post("/admin" + path.format(uid=bob["_id"]),
                          data={"csrf_token": token, "confirm": "yes", "user_id": bob["_id"]})
    assert ran and r.status_code == 302
    assert db.audit_log.count_documents({"user_id": bob["_id"]}) == 0
    assert db.mail_outbox.count_documents({"user_id": bob["_id"]}) == 0
    assert db.face_status.find_one({"_id": bob["_id"]}) is None
    assert "being deleted" in admin.get(r.headers["Location"]).text
