"""A face-data deletion that stalls past its claim, and is taken over, does not erase what came after. The
claim lasts ``ERASE_CLAIM_S``; a process that died (or hung) mid-erasure then leaves the deletion to be run
again. Before, a deletion that woke up after another had taken over and finished went on deleting without a
claim: the owner's next enrollment, answered "Your face is enrolled" (then with new recovery codes; no deletion
takes codes since), lost its template, its codes and its face hashes to a deletion that had begun before it. Real app, real database, real
face engine and photos; the stall is a real thread held at the deletion's first delete, and the minute it
lasts is the deletion's claim written a minute earlier (its own clock, read at the claim)."""
from __future__ import annotations

import threading
from datetime import timedelta

from idp import get_db

from ._face import *  # noqa: F401,F403
from ._face import Browser


def _stalled_deletion(monkeypatch, db, uid: str):
    """Start a deletion that claimed a minute and a second ago and then stops at its first delete;
    returns (its thread, the event that lets it go on, the list its result lands in)."""
    from idp.face import repository
    from idp.faceweb import erasure
    real_now, real_delete = erasure.utcnow, repository.delete_template
    waiting, go, out = threading.Event(), threading.Event(), []

    def stalled():
        out.append(erasure.delete_face_data(db, uid))

    thread = threading.Thread(target=stalled, daemon=True)

    claimed = []

    def now():  # the deletion's first reading of the clock is its claim's: a minute and a second ago
        if threading.current_thread() is thread and not claimed:
            claimed.append(True)
            return real_now() - timedelta(seconds=erasure.ERASE_CLAIM_S + 1)
        return real_now()

    def delete_template(*args, **kw):
        if threading.current_thread() is thread and not go.is_set():
            waiting.set()
            assert go.wait(60)
        return real_delete(*args, **kw)
    monkeypatch.setattr(erasure, "utcnow", now)
    monkeypatch.setattr(repository, "delete_template", delete_template)
    thread.start()
    assert waiting.wait(60), "the deletion never reached its first delete"
    return thread, go, out


def test_a_deletion_taken_over_leaves_the_next_enrollment_alone(app, enrolled, people, monkeypatch):
    from idp.faceweb import erasure
    user, _owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    thread, go, stalled = _stalled_deletion(monkeypatch, db, uid)
    try:
        taken_over = erasure.delete_face_data(db, uid)  # the claim is a minute old: this one takes it over
        assert taken_over is not None and taken_over["template"] == 1, taken_over
        assert db.face_templates.count_documents({"_id": uid}) == 0
        b = Browser(app)  # the owner enrolls again, after that deletion finished
        b.login("alice")
        b.consent()
        r = b.capture("enroll", people["alice"][:5])
        assert r.status_code < 500 and r.get_json()["ok"] is True, r.get_json()
        template = db.face_templates.find_one({"_id": uid}, {"updated_at": 1})
        captures = db.capture_sessions.count_documents({"user_id": uid})
        assert template and captures
        capture = db.capture_sessions.find_one({"user_id": uid}, {"_id": 1})["_id"]
        _replay_rows(db, uid, capture, "b2")  # the next sign-in's frame, judged before the deletion wakes
    finally:
        go.set()
        thread.join(60)
    assert not thread.is_alive()
    assert stalled == [None], stalled  # it no longer holds the claim: it reports nothing
    assert db.face_templates.find_one({"_id": uid}, {"updated_at": 1}) == template
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # no deletion voids them
    assert db.capture_sessions.count_documents({"user_id": uid}) == captures
    assert db.liveness_frames.count_documents({"user_id": uid}) == 1
    assert db.liveness_face_hashes.count_documents({"user_id": uid}) == 1


def _replay_rows(db, uid: str, capture_id: str, tag: str) -> None:
    """Store a frame fingerprint and a turned face hash of ``capture_id`` as the capture API does, now."""
    from idp.faceweb import liveness
    from idp.faceweb.face_status import utcnow
    now = utcnow()
    assert liveness.remember_frame(db, f"{tag:0>64}", capture_id, uid, now) == liveness.NEW
    liveness.remember_frame_hash(db, uid, capture_id, f"{tag:0>16}", True, now)


def test_a_deletion_that_is_only_slow_erases_what_was_written_while_it_ran(app, enrolled, monkeypatch):
    """The other side: a deletion slowed past its claim, with no one taking over, still holds its claim, and erases
    everything written up to each delete - frame fingerprints and face hashes stored after its claim expired (a
    capture's frame judged meanwhile) too, and a capture stored without a creation time."""
    user, _owner = enrolled
    uid = user["_id"]
    db = get_db(app)
    db.capture_sessions.update_one({"user_id": uid}, {"$unset": {"created": ""}})
    assert db.recovery_codes.count_documents({"user_id": uid}) and db.capture_sessions.count_documents(
        {"user_id": uid})
    thread, go, stalled = _stalled_deletion(monkeypatch, db, uid)
    capture = db.capture_sessions.find_one({"user_id": uid}, {"_id": 1})["_id"]
    _replay_rows(db, uid, capture, "a1")  # written after the claim's expiry, while it is still held
    go.set()
    thread.join(60)
    assert stalled and stalled[0] and stalled[0]["template"] == 1, stalled
    assert stalled[0]["frame_digests"] == 1 and stalled[0]["face_hashes"] == 1, stalled
    for name, key in (("face_templates", "_id"), ("capture_sessions", "user_id"), ("liveness_frames", "user_id"),
                      ("liveness_face_hashes", "user_id")):
        assert db[name].count_documents({key: uid}) == 0, name
    assert db.recovery_codes.count_documents({"user_id": uid, "used_at": None}) == 10  # no deletion voids them
