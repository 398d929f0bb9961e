"""Red-team finding (fixed): a template enrolled through a recovery code could be used before its cooling-off
period began.

The enrollment saved the template, then stored the face hashes of its capture, then started the cooling-off
period (``reenrollment.after_enrollment``). A face check finished in between read no cooling-off period
(``CaptureService.blocker``) and loaded the new template: whoever holds the password and one stolen recovery code
enrolled their own face from one browser and, in that moment, finished a face check with it from another (its
capture filmed beforehand), and got ``amr ["pwd","face"]`` at once instead of after ``IDP_FACE_RECOVERY_COOLOFF``.
The check is made to land exactly in that window (what a second instance, or a second thread, does): right
after the template was saved. Now the period starts before the template is saved, and the face check reads it
after loading the template. The test failed before the fix (``face`` was given).
"""
from __future__ import annotations

from idp import get_db
from idp.face import repository

from ._face import *  # noqa: F401,F403
from ._face import Browser, session_auth
from .test_recovery_codes_not_replaced_without_face import _codes_on


def test_a_face_check_finished_as_a_recovery_enrollment_is_saved_gets_no_face(app, enrolled, people, monkeypatch):
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes_on(owner.get("/face/enroll/done").text)[0]
    checker = Browser(app)
    checker.login("alice")  # the password alone: the owner's template is asked for
    check = checker.start("verify").get_json()
    for image in people["mallory"][5:8]:  # the attacker's own face, filmed beforehand
        assert checker.frame(check, image).status_code == 200
    checker.page_csrf()
    enroller = Browser(app)
    enroller.login("alice")
    assert enroller.form("/face/recover", {"code": code}).status_code == 302  # and one stolen recovery code
    real_save = repository.save_template
    checked = []

    def save_then_check_lands(*args, **kwargs):
        saved = real_save(*args, **kwargs)
        if not checked:  # the face check finishes now, on another instance
            checked.append(checker.finish(check).get_json())
        return saved
    monkeypatch.setattr(repository, "save_template", save_then_check_lands)
    enrolled_now = enroller.capture("enroll", people["mallory"][:5]).get_json()
    monkeypatch.setattr(repository, "save_template", real_save)
    assert enrolled_now["ok"] is True, enrolled_now  # the attacker's face is enrolled (cooled off)
    assert checked and checked[0].get("ok") is not True, checked  # refused (cooling-off) or no match
    assert "face" not in session_auth(checker)["amr"]
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "match"}) == 0


def test_a_face_check_that_read_no_cooling_off_before_the_enrollment_gets_no_face(app, enrolled, people, monkeypatch):
    """The other order: the face check read the cooling-off state (none), then the enrollment ran, then the check
    loaded the template - the new one. It reads the state after loading the template now."""
    import sys

    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes_on(owner.get("/face/enroll/done").text)[0]
    checker = Browser(app)
    checker.login("alice")
    check = checker.start("verify").get_json()
    for image in people["mallory"][5:8]:
        assert checker.frame(check, image).status_code == 200
    checker.page_csrf()
    enroller = Browser(app)
    enroller.login("alice")
    assert enroller.form("/face/recover", {"code": code}).status_code == 302
    cap = enroller.start("enroll").get_json()
    for image in people["mallory"][:5]:
        assert enroller.frame(cap, image).status_code == 200
    enroller.page_csrf()
    real_load = repository.load_template
    enrolled_now = []

    def enrollment_lands_then_load(*args, **kwargs):
        if not enrolled_now and sys._getframe(1).f_code.co_name == "_verify":  # the check's own load
            enrolled_now.append(enroller.finish(cap).get_json())  # the enrollment finishes now, elsewhere
        return real_load(*args, **kwargs)
    monkeypatch.setattr(repository, "load_template", enrollment_lands_then_load)
    fin = checker.finish(check).get_json()
    monkeypatch.setattr(repository, "load_template", real_load)
    assert enrolled_now and enrolled_now[0]["ok"] is True, enrolled_now
    assert fin.get("ok") is not True, fin
    assert "face" not in session_auth(checker)["amr"]
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "match"}) == 0
