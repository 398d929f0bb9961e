"""Two enrollments of one account running at once: only one is saved.

Whoever has the password can open an enrollment capture while the account has no template yet (trust on
first use). If the owner's enrollment is saved after that capture was allowed but before it finishes,
the later finish must not overwrite the owner's template as if it were the account's first enrollment
(no re-enrollment checks, no cooling-off, a fresh set of recovery codes voiding the owner's). The
owner's save is made to land exactly in that window: after the intruder's finish passed its access check
and before it saves (what a second instance, or a second thread, does)."""
from __future__ import annotations

from idp import get_db
from idp.faceweb import capture

from ._face import *  # noqa: F401,F403
from ._face import Browser, enroll_user


def _open_capture(b: Browser, photos) -> dict:
    cap = b.start("enroll").get_json()
    for image in photos:
        r = b.frame(cap, image)
        assert r.status_code == 200, r.get_json()
        if r.get_json()["done"]:
            return cap
    raise AssertionError("the capture never had enough frames")


def _saved_between_check_and_save(monkeypatch, db, record: dict) -> None:
    """The next enrollment finish: ``record`` is stored right after its access check passed."""
    original = capture.CaptureService.check_access
    armed = {"on": True}

    def check_then_concurrent_save(self):
        original(self)
        if armed["on"] and self.purpose == "enroll":
            armed["on"] = False
            db.face_templates.insert_one(record)
    monkeypatch.setattr(capture.CaptureService, "check_access", check_then_concurrent_save)


def test_a_first_enrollment_saved_meanwhile_is_not_overwritten(app, new_user, people, monkeypatch):
    user = new_user("alice")
    uid = user["_id"]
    db = get_db(app)
    owner, intruder = Browser(app), Browser(app)
    owner.login("alice")
    owner.consent()
    intruder.login("alice")  # the password, the same minute
    intruders_capture = _open_capture(intruder, people["mallory"][:5])

    assert owner.capture("enroll", people["alice"][:5]).get_json()["ok"]
    owners_record = db.face_templates.find_one({"_id": uid})
    owners_codes = db.recovery_codes.count_documents({"user_id": uid, "used_at": None})
    assert owners_codes == 10
    # replay the order of two instances: the intruder's finish is checked before the owner's save lands
    db.face_templates.delete_one({"_id": uid})
    _saved_between_check_and_save(monkeypatch, db, owners_record)

    resp = intruder.finish(intruders_capture)
    body = resp.get_json()
    assert body["ok"] is False and body["reasons"] == ["enrolled_meanwhile"], body
    assert "not saved" in body["message"]
    stored = db.face_templates.find_one({"_id": uid})
    assert stored["ciphertext"] == owners_record["ciphertext"]  # the owner's template, untouched
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == owners_codes
    assert db.audit_log.find_one({"user_id": uid, "decision": "rejected", "reasons": "enrolled_meanwhile"}) is not None


def test_a_re_enrollment_does_not_overwrite_a_template_saved_meanwhile(app, new_user, people):
    """The save is a compare-and-swap against the record the enrollment read, on every path."""
    from idp import get_config
    from idp.face.repository import load_template, save_template, template_info
    from idp.face.template import TemplateCipher

    user, _ = enroll_user(app, new_user, people["alice"])
    uid, db = user["_id"], get_db(app)
    cipher = TemplateCipher.from_config(get_config(app))
    template = load_template(db, uid, cipher)
    seen = template_info(db, uid)
    assert save_template(db, uid, template, cipher, replacing=seen)
    # a second writer that read the same state loses, and writes nothing
    now = db.face_templates.find_one({"_id": uid})
    assert not save_template(db, uid, template, cipher, replacing=seen)
    assert not save_template(db, uid, template, cipher, replacing=None)
    assert db.face_templates.find_one({"_id": uid})["nonce"] == now["nonce"]
