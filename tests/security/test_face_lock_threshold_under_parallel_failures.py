"""Parallel sign-in finishes of one account never get more face comparisons than ``lock_after``.

Several browser sessions of one user, each at the face step after the password with its own capture of a
wrong face, finish together. The per-user judging reservation makes them take turns, but it expires after
``lockout.JUDGING_S`` (so that a crashed worker does not block the account): a judgment that outlasts it (a
host loaded with frames, a cold model) lets the next finish take over. If the lock is only *checked* before
judging and the failure *counted* after it, every finish past the check is judged: with the reservation gone
more than ``lock_after`` comparisons are made before the lock holds. The attempt must be charged atomically
before it is judged, refused once the count reached the lock, so no timing gets a comparison past it.

A host on which every judgment takes longer than the reservation is played by a reservation that lasts no time
(``JUDGING_S`` = 0). Real app, real MongoDB, real face engine, real photos.
"""
from __future__ import annotations

import threading

from idp import get_db
from idp.faceweb import lockout

from ._face import Browser, app, cheap_password_hashing, engine, enroll_user, make_app, new_user, people  # noqa: F401

LOCK_AFTER = 3
BROWSERS = 6
ROUNDS_AT_THE_EDGE = 3


def _finish_together(browsers, caps) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(browsers))
    out: list = [None] * len(browsers)

    def run(i):
        barrier.wait()
        r = browsers[i].finish(caps[i])
        out[i] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(browsers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(r is not None for r in out), out
    return out


def _round(app, db, uid, people, already: int) -> None:
    """``BROWSERS`` sessions of alice at the face step, ``already`` failures counted, each finishing a capture
    of mallory together (a finish told "busy" tries again, as the page does): at most ``lock_after`` failures
    in all, so at most ``lock_after - already`` comparisons, and face sign-in ends locked."""
    lockout.reset_failures(db, uid, unlock=True)  # (an administrator's unlock between rounds)
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": already}})
    before = db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "no_match"})
    locks = db.audit_log.count_documents({"event": "face.lockout", "user_id": uid})
    browsers, caps = [], []
    for _ in range(BROWSERS):
        b = Browser(app)
        b.login("alice")
        cap = b.start("verify").get_json()
        for image in people["mallory"][:3]:
            assert b.frame(cap, image).status_code == 200
        browsers.append(b)
        caps.append(cap)
    pending = list(range(BROWSERS))
    results = []
    for _ in range(BROWSERS):
        if not pending:
            break
        out = _finish_together([browsers[i] for i in pending], [caps[i] for i in pending])
        results += out
        pending = [i for i, (code, body) in zip(pending, out) if body.get("error") == "check_in_progress"]

    compared = db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "no_match"}) - before
    assert compared <= LOCK_AFTER - already, {"already": already, "comparisons": compared, "results": results}
    status = db.face_status.find_one({"_id": uid})
    assert status.get("locked_at") and status["failures"] == LOCK_AFTER, status
    assert db.audit_log.count_documents({"event": "face.lockout", "user_id": uid}) == locks + 1
    for code, body in results:
        assert (code, body.get("error")) in {(200, None), (429, "check_in_progress"), (429, "slow_down"),
                                             (403, "face_locked")}, results


def test_parallel_wrong_faces_get_at_most_lock_after_comparisons_even_when_the_reservation_expires(
        make_app, new_user, people, monkeypatch):
    app = make_app(face_free_failures=LOCK_AFTER, face_lock_after=LOCK_AFTER)
    user, _ = enroll_user(app, new_user, people["alice"])
    uid = user["_id"]
    db = get_db(app)
    # every judgment outlasts its reservation (the next finish finds it over)
    monkeypatch.setattr(lockout, "JUDGING_S", 0)
    for already in (0,) + (LOCK_AFTER - 1,) * ROUNDS_AT_THE_EDGE:  # from no failure, then one short of the lock
        _round(app, db, uid, people, already)

    # the lock holds: another session's capture is refused before anything is judged
    compared = db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "no_match"})
    late = Browser(app)
    late.login("alice")
    r = late.start("verify")
    assert r.status_code == 403 and r.get_json()["error"] == "face_locked"
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "no_match"}) == compared
