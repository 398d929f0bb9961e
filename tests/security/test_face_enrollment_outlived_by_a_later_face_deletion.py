"""An enrollment that a deletion of the face data overtakes after its template was saved keeps nothing. The
enrollment reads the deletion right after its save; its later writes (the re-enrollment marks lifted, new
recovery codes, its answer) came after a deletion that ran between that read and them. Before, such an enrollment
answered "Your face is enrolled" with ten new recovery codes while the deletion had removed its template; it
lifted the mark a deletion by a recovery-code sign-in leaves so that the next enrollment starts a cooling-off
period; and its new codes replaced the owner's, which that deletion keeps on purpose. Real app, real database,
real face engine and photos; the deletion runs, for real, at the enrollment's first write after that read."""
from __future__ import annotations

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser, PASSWORD
from .test_recovery_codes_not_replaced_without_face import _codes_on


def _deletion_at_the_marks(monkeypatch, db, uid: str, *, face_proven: bool) -> list:
    """Run a real face-data deletion when the enrollment lifts the re-enrollment marks (once); the list it
    appends to when it ran."""
    from idp.faceweb import erasure, reenrollment
    real, ran = reenrollment.after_enrollment, []

    def deletion_first(db_, user_id, *args, **kw):
        if not ran:
            ran.append(erasure.delete_face_data(db, uid, face_proven=face_proven))
        return real(db_, user_id, *args, **kw)
    monkeypatch.setattr(reenrollment, "after_enrollment", deletion_first)
    return ran


def test_a_first_enrollment_overtaken_by_a_deletion_answers_so_and_keeps_no_codes(app, new_user, people,
                                                                                   monkeypatch):
    uid = new_user("alice")["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    b.consent()
    ran = _deletion_at_the_marks(monkeypatch, db, uid, face_proven=True)
    r = b.capture("enroll", people["alice"][:5])
    monkeypatch.undo()
    assert ran and ran[0] is not None, ran  # the deletion erased (it claimed, it reported)
    assert r.status_code < 500 and r.get_json()["ok"] is not True, r.get_json()
    assert r.get_json()["reasons"] == ["erased_meanwhile"], r.get_json()
    assert db.face_templates.count_documents({"_id": uid}) == 0
    assert db.recovery_codes.count_documents({"user_id": uid}) == 0
    assert _codes_on(b.get("/face/enroll/done").text) == []
    assert not db.audit_log.find_one({"event": "face.enroll", "decision": "enrolled", "user_id": uid})


def test_a_reenrollment_overtaken_by_a_recovery_code_deletion_keeps_its_guards_and_the_owners_codes(
        app, enrolled, people, monkeypatch):
    """The owner re-enrolls (password, fresh face match) while a recovery-code sign-in deletes the face data:
    that deletion keeps the owner's unused codes and marks the next enrollment for a cooling-off period. Both
    survive the enrollment it overtook."""
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    owners = {d["_id"] for d in db.recovery_codes.find({"user_id": uid, "used_at": None}, {"_id": 1})}
    assert len(owners) == 10
    c = Browser(app)
    c.login("alice")
    assert c.capture("verify", people["alice"][5:8]).get_json()["ok"]
    c.form("/account/face/reenroll", {"password": PASSWORD}, page="/account/face")
    assert c.capture("verify", people["alice"][5:8]).get_json()["ok"]
    ran = _deletion_at_the_marks(monkeypatch, db, uid, face_proven=False)
    r = c.capture("enroll", people["alice"][2:7])
    monkeypatch.undo()
    assert ran and ran[0] is not None, ran
    assert r.status_code < 500 and r.get_json()["reasons"] == ["erased_meanwhile"], r.get_json()
    assert db.face_templates.count_documents({"_id": uid}) == 0
    kept = {d["_id"] for d in db.recovery_codes.find({"user_id": uid, "used_at": None}, {"_id": 1})}
    assert kept == owners  # the owner's codes, and no new ones
    assert _codes_on(c.get("/face/enroll/done").text) == []
    mark = (db.face_status.find_one({"_id": uid}) or {}).get("enroll_cooloff")
    assert mark and mark.get("via") == "deleted", mark


def test_an_enrollment_overtaken_where_an_earlier_deletion_left_its_mark_keeps_the_mark(app, enrolled, people,
                                                                                       monkeypatch):
    """An earlier deletion by a recovery-code sign-in left its mark; an enrollment from the password alone (cooled
    off, by that mark) is overtaken by a second such deletion. That deletion found the mark stored and wrote the
    same one back; the enrollment, which lifts the mark it read, lifted it too, and after the cooling-off period
    the next enrollment from the password alone counted as the account's first (no period, new codes)."""
    from idp.faceweb import erasure
    user, owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    owners = {d["_id"] for d in db.recovery_codes.find({"user_id": uid, "used_at": None}, {"_id": 1})}
    assert erasure.delete_face_data(db, uid, face_proven=False) is not None  # the first deletion: its mark
    assert (db.face_status.find_one({"_id": uid}) or {}).get("enroll_cooloff")
    b = Browser(app)
    b.login("alice")  # the password alone
    b.consent()
    ran = _deletion_at_the_marks(monkeypatch, db, uid, face_proven=False)
    r = b.capture("enroll", people["mallory"][:5])
    monkeypatch.undo()
    assert ran and ran[0] is not None, ran
    assert r.status_code < 500 and r.get_json()["reasons"] == ["erased_meanwhile"], r.get_json()
    assert db.face_templates.count_documents({"_id": uid}) == 0
    mark = (db.face_status.find_one({"_id": uid}) or {}).get("enroll_cooloff")
    assert mark and mark.get("via") == "deleted", mark
    assert {d["_id"] for d in db.recovery_codes.find({"user_id": uid, "used_at": None}, {"_id": 1})} == owners


def test_an_enrollment_overtaken_by_a_deletion_does_not_take_a_later_template_for_its_own(app, new_user, people,
                                                                                         monkeypatch):
    """A deletion runs after the enrollment's save, the consent is given again and another enrollment saves its
    template, all before the enrollment's read after its writes. That read asked only whether *a* template was
    stored: it answered "Your face is enrolled" (and audited it) for a template that was not its own. It asks
    for the one it saved now; the later template stays."""
    import numpy as np

    from idp.face import Template, TemplateCipher
    from idp.face.repository import is_stored, save_template
    from idp.faceweb import erasure, notice, reenrollment
    uid = new_user("alice")["_id"]
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    b.consent()
    real, later = reenrollment.after_enrollment, []
    cipher = TemplateCipher(app.config["IDP"].template_key)

    def deletion_then_another_enrollment(db_, user_id, *args, **kw):
        if not later:
            assert erasure.delete_face_data(db, uid) is not None
            notice.record_consent(db, uid)
            emb = np.random.default_rng(3).normal(size=(3, 512))
            later.append(save_template(db, uid, Template.from_embeddings(emb), cipher))
        return real(db_, user_id, *args, **kw)
    monkeypatch.setattr(reenrollment, "after_enrollment", deletion_then_another_enrollment)
    r = b.capture("enroll", people["alice"][:5])
    monkeypatch.undo()
    assert later and later[0] is not None
    assert r.status_code < 500 and r.get_json()["reasons"] == ["erased_meanwhile"], r.get_json()
    assert is_stored(db, uid, later[0])  # the later template stays
    assert not db.audit_log.find_one({"event": "face.enroll", "decision": "enrolled", "user_id": uid})
