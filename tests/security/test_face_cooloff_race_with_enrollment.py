"""A template enrolled through a recovery code gives no amr "face" during its cooling-off period, also to a face
check judged while that enrollment is being stored. Before, the template was saved first and its cooling-off
period written after it: a sign-in of the attacker's in another browser (the password alone), its capture of
the new face finished in between, found no cooling-off period, loaded the new template and got amr "face" at
once (the whole 24 h skipped). Real app, real database, real face engine and photos; the interleaving is
forced by running the other browser's finish right after the real save."""
from __future__ import annotations

import re
import threading

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser, session_auth


def _codes(browser) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", browser.get("/face/enroll/done").text)


def test_a_face_check_finished_while_a_recovery_enrollment_is_stored_gets_no_face(app, enrolled, people,
                                                                                   monkeypatch):
    from idp.face import repository
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    code = _codes(owner)[0]

    other = Browser(app)  # the attacker's second browser: the password alone, a face check of the new face
    other.login("alice")
    cap = other.start("verify").get_json()
    for image in people["mallory"][5:8]:
        assert other.frame(cap, image).status_code == 200

    attacker = Browser(app)  # password and one recovery code: enrolls the attacker's face
    attacker.login("alice")
    assert attacker.form("/face/recover", {"code": code}).status_code == 302

    answers = []
    real_save = repository.save_template

    def save_then_finish_the_other(*args, **kwargs):
        stored = real_save(*args, **kwargs)
        if stored and not answers:  # the other browser's finish, judged right after the new template is stored
            t = threading.Thread(target=lambda: answers.append(other.finish(cap)))
            t.start()
            t.join()
        return stored

    monkeypatch.setattr(repository, "save_template", save_then_finish_the_other)
    assert attacker.capture("enroll", people["mallory"][:5]).get_json()["ok"]
    monkeypatch.undo()

    [answer] = answers
    assert "face" not in session_auth(other)["amr"]
    body = answer.get_json()  # refused before judging (403) or judged and refused: either way for the period
    assert body.get("error") == "face_cooloff" or body.get("reasons") == ["face_cooloff"], body
    recovered_at = db.audit_log.find_one({"event": "face.recovery", "user_id": uid})["at"]
    assert not db.audit_log.find_one({"event": "face.verify", "user_id": uid, "decision": "match",
                                      "at": {"$gt": recovered_at}})


def test_a_face_check_that_read_no_cooling_off_before_the_enrollment_does_not_judge_the_new_template(
        app, enrolled, people, monkeypatch):
    """The other interleaving: the face check reads that no period runs, then the recovery enrollment writes its
    period and its template, then the check would load the template. The check loads the template before it reads
    the period, so it judges the template it read before the enrollment (the owner's: no match), never the new one
    without its period."""
    from idp.faceweb import reenrollment
    user, owner = enrolled
    uid = user["_id"]
    code = _codes(owner)[0]

    other = Browser(app)
    other.login("alice")
    cap = other.start("verify").get_json()
    for image in people["mallory"][5:8]:
        assert other.frame(cap, image).status_code == 200

    attacker = Browser(app)
    attacker.login("alice")
    assert attacker.form("/face/recover", {"code": code}).status_code == 302
    enroll = attacker.start("enroll").get_json()
    for image in people["mallory"][:5]:
        assert attacker.frame(enroll, image).status_code == 200

    real_until = reenrollment.cooloff_until
    here = threading.get_ident()
    reads, enrolled_meanwhile = [], []

    def enrollment_right_after_the_read(db_, uid_):
        value = real_until(db_, uid_)
        if threading.get_ident() == here and uid_ == uid:
            reads.append(value)
            if len(reads) == 2:  # the finish's own read (the first is its access check's)
                t = threading.Thread(target=lambda: enrolled_meanwhile.append(attacker.finish(enroll)))
                t.start()
                t.join()
        return value

    monkeypatch.setattr(reenrollment, "cooloff_until", enrollment_right_after_the_read)
    answer = other.finish(cap)
    monkeypatch.undo()
    assert enrolled_meanwhile and enrolled_meanwhile[0].get_json()["ok"], enrolled_meanwhile
    assert "face" not in session_auth(other)["amr"], answer.get_json()
    assert answer.get_json()["ok"] is False
