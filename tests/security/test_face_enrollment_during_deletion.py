"""Red-team finding (fixed): an enrollment finished while a deletion of the face data runs kept its template and
lost its cooling-off period.

Whoever holds the password and one stolen recovery code may enroll a face, which gives no ``amr face`` for
``IDP_FACE_RECOVERY_COOLOFF`` (``cooloff_until``), and may delete the face data, which marks the next enrollment
for a cooling-off period too. The deletion deleted the template first, and wrote the user's ``face_status`` last,
from the document as it read it when it began (its guards kept, everything else dropped). An enrollment that saved
its template between the two (into the emptied slot: no compare-and-swap conflict) and started its cooling-off
period before the status was written had that period overwritten: the attacker's face gave ``amr face`` at once.
The enrollment is made to land exactly in that window (what a second instance, or a second thread, does): right
after the deletion removed the template. Both outcomes are safe now: no template survives a deletion it raced
with, and one saved after it is cooled off. The test failed before the fix (``face`` was given).
"""
from __future__ import annotations

from idp import get_db
from idp.face import repository

from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, Browser, session_auth
from .test_recovery_codes_not_replaced_without_face import _codes_on


def _deletion_started(deleter, deleted):
    """``deleter`` (signed in, the face page's CSRF token read) deletes the face data in a thread of its own;
    ``deleted`` is set once the request is over, whatever its outcome. The thread, started."""
    import threading

    def run_deletion():
        try:
            deleter.client.post("/account/face/delete", data={"csrf_token": deleter.csrf, "confirm": "yes",
                                                              "password": PASSWORD})
        finally:
            deleted.set()
    thread = threading.Thread(target=run_deletion)
    thread.start()
    return thread


def test_an_enrollment_racing_a_deletion_keeps_no_template_without_its_cooling_off(app, enrolled, people, monkeypatch):
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes_on(owner.get("/face/enroll/done").text)[0]
    attacker = Browser(app)
    attacker.login("alice")  # the password
    assert attacker.form("/face/recover", {"code": code}).status_code == 302  # and one stolen recovery code
    cap = attacker.start("enroll").get_json()  # the recovery grant allows replacing the owner's face
    for image in people["mallory"][:5]:
        assert attacker.frame(cap, image).status_code == 200
    attacker.page_csrf("/account/face")
    real_delete = repository.delete_template
    finished, landing = [], []

    def delete_then_enrollment_lands(db_, user_id, *saved, **kw):
        deleted = real_delete(db_, user_id, *saved, **kw)
        if not landing:  # the attacker's enrollment finishes now, on another instance (once)
            landing.append(True)
            finished.append(attacker.finish(cap).get_json())
        return deleted
    monkeypatch.setattr(repository, "delete_template", delete_then_enrollment_lands)
    r = attacker.client.post("/account/face/delete", data={"csrf_token": attacker.csrf, "confirm": "yes",
                                                           "password": PASSWORD})
    assert r.status_code == 302
    monkeypatch.setattr(repository, "delete_template", real_delete)
    # accepted in the window (then cooled off), or refused: the deletion passed while it was judged
    assert finished and (finished[0]["ok"] is True or finished[0]["reasons"] == ["erased_meanwhile"]), finished
    # a fresh sign-in with the password alone, the attacker's face in front of the camera
    b = Browser(app)
    b.login("alice")
    start = b.start("verify")
    if start.status_code == 201:  # a template survived: its cooling-off period must run
        cap = start.get_json()
        for image in people["mallory"][5:8] + people["mallory"][:3]:
            if b.frame(cap, image).get_json().get("done"):
                break
        assert b.finish(cap).get_json()["ok"] is False
    else:
        assert start.get_json()["error"] == "not_enrolled"  # no template survived the deletion
    assert "face" not in session_auth(b)["amr"]
    template = db.face_templates.count_documents({"_id": uid})
    cooloff = (db.face_status.find_one({"_id": uid}) or {}).get("cooloff_until")
    assert template == 0 or cooloff is not None


def test_a_first_enrollment_racing_a_deletion_by_a_recovery_code_session_is_cooled_off(app, enrolled, people,
                                                                                       monkeypatch):
    """The same window from a second browser signed in with the password alone: once the template is gone it may
    enroll a "first" face. The deletion's mark (the next enrollment is cooled off) was written with the status, at
    the end: an enrollment that read the marks before that and saved after the deletion was a first enrollment
    without cooling-off (``amr face`` at once, and a fresh set of recovery codes voiding the owner's)."""
    import threading

    from idp.faceweb import reenrollment

    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes_on(owner.get("/face/enroll/done").text)[0]
    deleter = Browser(app)
    deleter.login("alice")
    assert deleter.form("/face/recover", {"code": code}).status_code == 302  # password + one stolen code
    deleter.page_csrf("/account/face")
    other = Browser(app)
    other.login("alice")  # the password alone, in another browser
    other.page_csrf()
    codes_before = db.recovery_codes.count_documents({"user_id": uid, "used_at": None})
    gone, read, deleted = threading.Event(), threading.Event(), threading.Event()
    real_delete, real_mark = repository.delete_template, reenrollment.enroll_cooloff_mark

    def delete(db_, user_id, *saved, **kw):
        out = real_delete(db_, user_id, *saved, **kw)
        if not gone.is_set():  # the template is gone: the other browser enrolls now, until it has read the marks
            gone.set()
            assert read.wait(120)
        return out

    def mark(db_, user_id):
        out = real_mark(db_, user_id)
        read.set()  # the marks read; the template is saved once the deletion is over
        assert deleted.wait(120)
        return out
    monkeypatch.setattr(repository, "delete_template", delete)
    monkeypatch.setattr(reenrollment, "enroll_cooloff_mark", mark)
    thread = _deletion_started(deleter, deleted)
    try:
        assert gone.wait(120)
        cap = other.start("enroll").get_json()  # no template now: a first enrollment
        for image in people["mallory"][:5]:
            assert other.frame(cap, image).status_code == 200
        finished = other.finish(cap).get_json()
    finally:
        read.set()
        thread.join(120)
    monkeypatch.setattr(repository, "delete_template", real_delete)
    monkeypatch.setattr(reenrollment, "enroll_cooloff_mark", real_mark)
    # enrolled after the deletion: allowed but cooled off, or refused (the deletion withdrew the consent it ran on)
    assert finished["ok"] is True or finished["reasons"] == ["erased_meanwhile"], finished
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == codes_before  # not replaced
    b = Browser(app)
    b.login("alice")
    start = b.start("verify")
    expected = "face_cooloff" if finished["ok"] else "not_enrolled"
    assert start.status_code in (403, 409) and start.get_json()["error"] == expected, start.get_json()
    assert "face" not in session_auth(b)["amr"]


def test_a_cooling_off_started_while_a_deletion_runs_survives_its_status_write(app, enrolled, people, monkeypatch):
    """An enrollment cooled off starts its period before it saves the template (so that no face check judges the
    template without it). The deletion wrote the status from the document as it read it when it began: a period
    started after that read was dropped by that write, and a template saved after the deletion's second delete of
    the template had no period until the enrollment started it again at its end. A face check finished in that
    moment, from a browser with the password alone, gave ``amr face`` with the attacker's face."""
    import threading

    from idp.faceweb import reenrollment

    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    codes = _codes_on(owner.get("/face/enroll/done").text)
    enroller = Browser(app)
    enroller.login("alice")
    assert enroller.form("/face/recover", {"code": codes[0]}).status_code == 302  # password + one stolen code
    cap = enroller.start("enroll").get_json()
    for image in people["mallory"][:5]:
        assert enroller.frame(cap, image).status_code == 200
    enroller.page_csrf()
    deleter = Browser(app)
    deleter.login("alice")
    assert deleter.form("/face/recover", {"code": codes[1]}).status_code == 302  # a second browser, another code
    deleter.page_csrf("/account/face")
    checker = Browser(app)
    checker.login("alice")  # a third, with the password alone
    checker.page_csrf()
    gone, cooled, deleted = threading.Event(), threading.Event(), threading.Event()
    real_delete, real_start, real_save = (repository.delete_template, reenrollment.start_cooloff,
                                          repository.save_template)
    checked = []

    def delete(db_, user_id, *saved, **kw):
        out = real_delete(db_, user_id, *saved, **kw)
        if not gone.is_set():  # the owner's template is gone: the enrollment finishes now, elsewhere
            gone.set()
            assert cooled.wait(120)  # until it started its cooling-off period
        return out

    def start_cooloff(*args, **kwargs):
        out = real_start(*args, **kwargs)
        if not cooled.is_set():  # the enrollment's period, before its save: the deletion ends meanwhile
            cooled.set()
            assert deleted.wait(120)
        return out

    def save_then_check_lands(*args, **kwargs):
        saved = real_save(*args, **kwargs)
        if saved and not checked:  # a face check with the attacker's face, right after the save
            start = checker.start("verify")
            if start.status_code != 201:
                checked.append(start.get_json())
            else:
                check = start.get_json()
                for image in people["mallory"][5:8]:
                    assert checker.frame(check, image).status_code == 200
                checked.append(checker.finish(check).get_json())
        return saved
    monkeypatch.setattr(repository, "delete_template", delete)
    monkeypatch.setattr(reenrollment, "start_cooloff", start_cooloff)
    monkeypatch.setattr(repository, "save_template", save_then_check_lands)
    thread = _deletion_started(deleter, deleted)
    try:
        assert gone.wait(120)
        finished = enroller.finish(cap).get_json()
    finally:
        cooled.set()
        thread.join(120)
    monkeypatch.setattr(repository, "delete_template", real_delete)
    monkeypatch.setattr(reenrollment, "start_cooloff", real_start)
    monkeypatch.setattr(repository, "save_template", real_save)
    # saved after the deletion: allowed but cooled off, or refused right after the save (the deletion withdrew the
    # consent it ran on); either way the check in between judged a template that was saved
    assert finished["ok"] is True or finished["reasons"] == ["erased_meanwhile"], finished
    assert checked and checked[0].get("ok") is not True, checked  # refused (cooling-off), never a match
    assert "face" not in session_auth(checker)["amr"]
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "match"}) == 0
    assert reenrollment.cooloff_until(db, uid) is not None
