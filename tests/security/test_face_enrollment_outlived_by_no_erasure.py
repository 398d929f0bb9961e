"""An enrollment judged while the account or its face data is being deleted leaves no template behind. The
enrollment's checks (account usable, consent given) run when its finish starts; the face engine then works for
a second or more before the template is saved. Before, a deletion that ran meanwhile (the account deleted by
an administrator or ``idp users delete``, the face data deleted from the account page in another tab) had
passed the templates already, and the enrollment stored one after it: a face template of a deleted account
(no account left to delete it with), or of an account whose owner had just withdrawn the consent. Real app,
real database, real face engine and photos; the deletion is run, for real, between the checks and the save."""
from __future__ import annotations

import pytest

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser, delete_account, delete_face_data, deleted_at


@pytest.mark.parametrize("deletion", [delete_account, delete_face_data])
def test_a_deletion_during_an_enrollment_leaves_no_template(app, new_user, people, monkeypatch, deletion):
    from idp.face import repository
    user = new_user("alice")
    uid = user["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    b.consent()

    real_info = repository.template_info
    ran = []

    def deleted_meanwhile(db_, uid_):  # the enrollment reads the stored template right before it saves its own
        if not ran:
            ran.append(True)
            deletion(db, uid)
        return real_info(db_, uid_)

    cap = b.start("enroll").get_json()
    for image in people["alice"][:5]:
        assert b.frame(cap, image).status_code == 200
    monkeypatch.setattr(repository, "template_info", deleted_meanwhile)
    r = b.finish(cap)
    monkeypatch.undo()
    assert ran and r.status_code < 500
    ok = r.get_json().get("ok")
    assert db.face_templates.count_documents({"_id": uid}) == 0
    assert db.recovery_codes.count_documents({"user_id": uid}) == 0
    assert db.liveness_face_hashes.count_documents({"user_id": uid}) == 0
    assert not db.audit_log.find_one({"event": "face.enroll", "decision": "enrolled", "user_id": uid})
    if deletion is delete_account:  # nothing at all is left under the deleted account's id
        assert not db.audit_log.find_one({"user_id": uid}) and not db.face_status.find_one({"_id": uid})
    if deletion is delete_account:  # the browser is signed out (idp.accounts.current.erased_meanwhile)
        assert r.status_code == 401 and r.get_json()["error"] == "login_required", r.get_json()
    else:
        assert ok is not True and r.get_json()["reasons"] == ["erased_meanwhile"]


def test_an_account_deleted_during_a_recovery_enrollment_keeps_nothing(app, enrolled, people, monkeypatch):
    """The same with an enrollment that starts a cooling-off period (a recovery code): the period, written before
    the template, does not outlive the account either."""
    import re

    from idp.face import repository
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", owner.get("/face/enroll/done").text)[0]
    b = Browser(app)
    b.login("alice")
    assert b.form("/face/recover", {"code": code}).status_code == 302
    real_info = repository.template_info

    def deleted_meanwhile(db_, uid_):  # read right before the period and the template are written
        delete_account(db, uid)
        return real_info(db_, uid_)

    cap = b.start("enroll").get_json()
    for image in people["mallory"][:5]:
        assert b.frame(cap, image).status_code == 200
    monkeypatch.setattr(repository, "template_info", deleted_meanwhile)
    r = b.finish(cap)
    monkeypatch.undo()
    assert r.status_code == 401 and r.get_json()["error"] == "login_required", r.get_json()  # signed out
    for name in ("face_templates", "face_status"):
        assert db[name].count_documents({"_id": uid}) == 0, name
    for name in ("recovery_codes", "audit_log", "liveness_face_hashes", "capture_sessions"):
        assert db[name].count_documents({"user_id": uid}) == 0, name


def test_an_account_deleted_after_the_enrollments_last_check_keeps_none_of_its_writes(app, new_user, people,
                                                                                      monkeypatch):
    """The enrollment reads the deletion once, right after its save; what it writes after that read (recovery codes,
    the face status, its audit entries) came after an account deletion that ran in between had passed those
    collections: rows of an account that no longer exists. It reads the account again once it is done, and a
    deletion it finds there takes every row under the id with it (``users.erased_if_claimed_since``)."""
    from idp.faceweb import recovery
    uid = new_user("alice")["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    b.consent()
    cap = b.start("enroll").get_json()
    for image in people["alice"][:5]:
        assert b.frame(cap, image).status_code == 200
    ran = deleted_at(monkeypatch, recovery, "add_recovery_codes", delete_account, db)
    r = b.finish(cap)
    monkeypatch.undo()
    assert ran and r.status_code == 401 and r.get_json()["error"] == "login_required", r.get_json()  # signed out
    assert db.users.count_documents({"_id": uid}) == 0
    left = {name: db[name].count_documents({"user_id": uid}) for name in db.list_collection_names()}
    assert not any(left.values()), left
    assert not db.face_status.find_one({"_id": uid}) and not db.face_templates.find_one({"_id": uid})
