"""Each counted face failure knows its own place in the run, even when two are counted at once.

The owner is mailed on the *first* counted face failure since the last success (``details.failures ==
1``) and on the one that locks face sign-in (``failures == lock_after``). Counted failures do not all
happen under the per-user judging reservation: an abandoned capture is settled by a start or by another
capture's reveal, and a replayed frame is counted by the frame request, in parallel with a finish. If
the number a failure reports is read back after the increment instead of taken from it, two failures
counted together can both report the later number: neither is "the first" (no mail for a look at a new
challenge) or neither is "the lock" (no lock audit, no mail).

Real MongoDB server; the counter is the real lockout.register_failure, called from threads.
"""
from __future__ import annotations

import threading

from idp.faceweb import lockout

ROUNDS = 40
THREADS = 4


def _together(fn, n):
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_failures_counted_together_each_report_their_own_number(db):
    limits = lockout.Limits(free_failures=100, lock_after=1000)
    for k in range(ROUNDS):
        uid = f"u{k}"
        db.face_status.insert_one({"_id": uid, "failures": 0})  # (made by the consent, before any capture)
        states = _together(lambda uid=uid: lockout.register_failure(db, uid, limits), THREADS)
        numbers = sorted(s.failures for s in states)
        # the run's first failure is reported once (the owner's mail), and no number twice
        assert numbers == list(range(1, THREADS + 1)), {"round": k, "reported": numbers}


def test_the_failure_that_locks_is_reported_as_the_lock_when_counted_together(db):
    limits = lockout.Limits(free_failures=100, lock_after=10)
    for k in range(ROUNDS):
        uid = f"l{k}"
        db.face_status.insert_one({"_id": uid, "failures": limits.lock_after - 1})
        states = _together(lambda uid=uid: lockout.register_failure(db, uid, limits), 2)
        # CaptureService._count_failure audits (and mails) the lock when state.failures == lock_after
        lockers = [s for s in states if s.locked and s.failures == limits.lock_after]
        assert len(lockers) == 1, {"round": k, "reported": [(s.failures, s.locked) for s in states]}
