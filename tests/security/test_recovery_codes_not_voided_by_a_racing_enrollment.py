"""No enrollment voids another's unused recovery codes, even racing it. An enrollment makes a set only when it
read "none left", and then retired every other batch made before its own, unused codes included. Two
face-confirmed re-enrollments of an account with no code left (the owner's, and one by whoever passes the face
step without being the owner): the owner's enrollment saves its template and, before it stores its codes, the
other one reads the template it replaces and "0 unused"; the owner's then stores its set and finishes ("Your face
is enrolled", ten codes shown); the other one saves over it and retired the owner's set, which no longer worked
(found in review; failed before). Real app, real database, real face engine and photos; the interleaving is placed with hooks, the
owner's finish in a thread of its own."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from ._face import *  # noqa: F401,F403
from ._face import PASSWORD, Browser
from .test_recovery_codes_not_replaced_without_face import _code_works, _codes_on, owners_codes_of


def _granted_capture(app, people, face: str):
    """A fresh sign-in with alice's password and face that confirmed both again for a re-enrollment, and an
    enrollment capture of ``face``'s photos, sent but not finished: (browser, capture)."""
    b = Browser(app)
    b.login("alice")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    b.form("/account/face/reenroll", {"password": PASSWORD}, page="/account/face")
    assert b.capture("verify", people["alice"][5:8]).get_json()["ok"]
    r = b.start("enroll")
    assert r.status_code == 201, r.get_json()
    cap = r.get_json()
    for image in people[face][2:7]:
        r = b.frame(cap, image)
        assert r.status_code == 200, r.get_json()
        if r.get_json()["done"]:
            break
    return b, cap


def test_a_racing_face_confirmed_enrollment_does_not_void_the_set_another_one_showed(app, enrolled, people,
                                                                                       monkeypatch):
    from idp.face import repository
    from idp.faceweb import recovery
    uid, db, _ = owners_codes_of(app, enrolled)
    db.recovery_codes.update_many({"user_id": uid}, {"$set": {"used_at": datetime.now(timezone.utc)}})  # none left
    owner, owner_cap = _granted_capture(app, people, "alice")
    other, other_cap = _granted_capture(app, people, "mallory")

    main = threading.current_thread()
    at_codes, go, owner_result, fired = threading.Event(), threading.Event(), [], []
    thread = threading.Thread(target=lambda: owner_result.append(owner.finish(owner_cap)), daemon=True)
    real_info, real_save, real_add = repository.template_info, repository.save_template, recovery.add_recovery_codes

    def template_info(*args, **kw):  # the other enrollment's read of the template it replaces ...
        if threading.current_thread() is main and not fired:
            fired.append(True)
            thread.start()  # ... comes after the owner's save, before the owner's codes
            assert at_codes.wait(120), "the owner's enrollment never reached its codes"
        return real_info(*args, **kw)

    def save_template(*args, **kw):  # the other enrollment saves once the owner's has finished
        if threading.current_thread() is main and fired and not go.is_set():
            go.set()
            thread.join(120)
        return real_save(*args, **kw)

    def add_recovery_codes(*args, **kw):
        if threading.current_thread() is thread:
            at_codes.set()
            assert go.wait(120)
        return real_add(*args, **kw)

    monkeypatch.setattr(repository, "template_info", template_info)
    monkeypatch.setattr(repository, "save_template", save_template)
    monkeypatch.setattr(recovery, "add_recovery_codes", add_recovery_codes)
    try:
        other_done = other.finish(other_cap)
    finally:
        go.set()
        at_codes.set()
        if thread.is_alive():
            thread.join(120)
    monkeypatch.undo()
    assert fired and owner_result and not thread.is_alive()
    assert owner_result[0].get_json()["ok"], owner_result[0].get_json()
    shown = _codes_on(owner.get("/face/enroll/done").text)
    assert len(shown) == 10  # "Your face is enrolled", with the owner's new set
    assert other_done.get_json()["ok"], other_done.get_json()  # the other face is enrolled (the open attack)
    # the owner's set must still work: no enrollment voids unused codes
    assert _code_works(app, shown[0])
