"""A refunded face attempt (``lockout.refund_attempt``: judged nothing) gives back its own charge and nothing else.

The refund is a compare-and-swap on the run of failures. If it compared the count alone, a count that went away
and came back to the same number while the charged attempt was judged (a match or an unlock reset it, then as
many failures were counted again) would have one of those real failures taken back: a free face attempt. Real
MongoDB (the suite's SecantusDB), no Flask.
"""
from __future__ import annotations

from idp.faceweb import lockout

LIMITS = lockout.Limits(free_failures=5, lock_after=10)


def test_a_refund_gives_back_its_own_charge(db):
    lockout.register_failure(db, "alice", LIMITS)
    charge = lockout.charge_attempt(db, "alice", LIMITS)
    assert charge is not None and charge.failures == 2
    lockout.refund_attempt(db, "alice", charge)
    doc = db.face_status.find_one({"_id": "alice"})
    assert doc["failures"] == 1 and doc.get("last_failure_at") is not None


def test_a_refund_never_takes_back_a_failure_counted_after_a_reset(db):
    lockout.register_failure(db, "alice", LIMITS)
    charge = lockout.charge_attempt(db, "alice", LIMITS)  # judged for long (its reservation expired)
    assert charge is not None and charge.failures == 2
    lockout.reset_failures(db, "alice", unlock=True)  # meanwhile: an administrator's unlock (or a match)
    for _ in range(2):  # and two real failures: the count is the charge's number again
        lockout.register_failure(db, "alice", LIMITS)
    lockout.refund_attempt(db, "alice", charge)  # the slow attempt ends as no attempt
    assert db.face_status.find_one({"_id": "alice"})["failures"] == 2


def test_an_error_after_the_faces_were_compared_keeps_the_charge(app, enrolled, people, monkeypatch):
    """A finish that compared the faces and then failed (a server error) judged an attempt: its charge stays a
    failure. Given back, an error that happens only after a match (the match's own writes) would tell a match
    apart from a no-match for free. Real app, database, face engine and photos; the error is placed right after the
    comparison's answer, as any later step of the finish could raise."""
    from idp import get_db
    from idp.face.engine import FaceEngine

    from .conftest import Browser
    user, _ = enrolled
    b = Browser(app)
    b.login("alice")
    compare = FaceEngine.verify

    def compared_then_broke(self, *args, **kw):
        compare(self, *args, **kw)
        raise RuntimeError("the database went away")
    monkeypatch.setattr(FaceEngine, "verify", compared_then_broke)
    r = b.capture("verify", people["alice"][5:8])
    assert r.status_code == 500, r.get_json()
    assert get_db(app).face_status.find_one({"_id": user["_id"]})["failures"] == 1


def test_a_recovery_code_charge_counts_and_refunds_on_its_own_counter_and_ignores_the_face_lock(db):
    """``prefix`` "recovery_": the same charge on the recovery-code counter, which the face lock does not refuse
    (a code is the way out of it) and which leaves the face's count alone; refused while its waiting time runs."""
    for _ in range(LIMITS.lock_after):
        lockout.register_failure(db, "alice", LIMITS)
    assert lockout.lock_state(db, "alice", LIMITS).locked
    charge = lockout.charge_attempt(db, "alice", LIMITS, prefix="recovery_")
    assert charge is not None and charge.failures == 1
    lockout.refund_attempt(db, "alice", charge, prefix="recovery_")
    doc = db.face_status.find_one({"_id": "alice"})
    assert doc["recovery_failures"] == 0 and "recovery_last_failure_at" not in doc
    assert doc["failures"] == LIMITS.lock_after and doc.get("locked_at")
    for n in range(1, LIMITS.free_failures + 1):
        charge = lockout.charge_attempt(db, "alice", LIMITS, prefix="recovery_")
        assert charge is not None and charge.failures == n
        lockout.charged_failure(db, "alice", LIMITS, charge, prefix="recovery_")
    assert lockout.charge_attempt(db, "alice", LIMITS, prefix="recovery_") is None  # the waiting time runs
    assert db.face_status.find_one({"_id": "alice"})["recovery_failures"] == LIMITS.free_failures
