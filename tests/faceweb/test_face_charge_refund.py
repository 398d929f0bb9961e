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
