"""The generic Throttle against the real database (time is moved by editing the stored document)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from idp.throttle import Throttle


def _fail(t, key) -> int:
    """One failed attempt, counted the way the product counts it (``reserve``, not released); returns the
    seconds of the block it started (0: none)."""
    wait, held = t.reserve(key)
    assert wait == 0 and held is not None
    if held.blocked_until is None:
        return 0
    doc = t.coll.find_one({"_id": key})
    return round((held.blocked_until - doc["last_failure"]).total_seconds())


def _expire_block(db, key):
    """Pretend the current block is over (instead of sleeping)."""
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    db.throttles.update_one({"_id": key}, {"$set": {"blocked_until": past}})


def test_free_failures_then_exponential_delay_capped(migrated_db):
    t = Throttle(migrated_db, free_failures=5, base_delay_s=30, max_delay_s=200)
    key = "pwd:user:alice"
    for _ in range(4):
        assert _fail(t, key) == 0
        assert t.check(key) == 0
    assert _fail(t, key) == 30  # 5th consecutive failure
    assert 25 <= t.check(key) <= 30
    delays = []
    for _ in range(4):
        _expire_block(migrated_db, key)
        assert t.check(key) == 0
        delays.append(_fail(t, key))
    assert delays == [60, 120, 200, 200]  # doubles, capped at max_delay_s: never a permanent lock
    assert t.failures(key) == 9


def test_success_resets(migrated_db):
    t = Throttle(migrated_db, free_failures=2, base_delay_s=30, max_delay_s=3600)
    _fail(t, "k")
    _fail(t, "k")
    assert t.check("k") > 0
    t.success("k")
    assert t.check("k") == 0 and t.failures("k") == 0
    assert _fail(t, "k") == 0  # counting starts again


def test_keys_are_independent(migrated_db):
    t = Throttle(migrated_db, free_failures=1, base_delay_s=30, max_delay_s=60)
    _fail(t, "pwd:ip:10.0.0.1")
    assert t.check("pwd:ip:10.0.0.1") > 0
    assert t.check("pwd:ip:10.0.0.2") == 0


def test_expired_record_is_forgotten(migrated_db):
    t = Throttle(migrated_db, free_failures=1, base_delay_s=30, max_delay_s=60, reset_after_s=3600)
    _fail(t, "k")
    doc = migrated_db.throttles.find_one({"_id": "k"})
    assert doc["expires"] > doc["blocked_until"]  # kept after the block for the TTL index to purge
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    migrated_db.throttles.update_one({"_id": "k"}, {"$set": {"expires": past}})
    assert t.check("k") == 0 and t.failures("k") == 0
    assert _fail(t, "k") == 30  # counted from one again, not two


def test_concurrent_failures_are_all_counted(migrated_db):
    t = Throttle(migrated_db, free_failures=100, base_delay_s=30, max_delay_s=60)
    n = 16
    barrier = threading.Barrier(n)
    errors = []

    def fail():
        barrier.wait()
        try:
            _fail(t, "shared")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=fail) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert t.failures("shared") == n


def test_two_instances_agree(migrated_db):
    """Two processes = two Throttle objects over the same collection."""
    a = Throttle(migrated_db, free_failures=3, base_delay_s=30, max_delay_s=60)
    b = Throttle(migrated_db, free_failures=3, base_delay_s=30, max_delay_s=60)
    _fail(a, "k")
    _fail(b, "k")
    _fail(a, "k")
    assert b.check("k") > 0


def test_reserve_counts_before_the_attempt_and_parallel_reservations_stop_at_the_limit(migrated_db):
    t = Throttle(migrated_db, free_failures=5, base_delay_s=30, max_delay_s=3600)
    granted, barrier, lock = [], threading.Barrier(24), threading.Lock()

    def go():
        barrier.wait()
        wait, held = t.reserve("k")
        with lock:
            granted.append(held is not None and wait == 0)

    threads = [threading.Thread(target=go) for _ in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert sum(granted) == 5 and len(granted) == 24
    assert t.failures("k") == 5 and 25 <= t.check("k") <= 30


def test_release_takes_back_the_attempt_and_the_block_it_started(migrated_db):
    t = Throttle(migrated_db, free_failures=2, base_delay_s=30, max_delay_s=3600)
    assert t.reserve("k")[0] == 0
    wait, held = t.reserve("k")  # the second reservation starts the block
    assert wait == 0 and held.blocked_until is not None and t.check("k") > 0
    t.release(held)
    assert t.failures("k") == 1 and t.check("k") == 0
    t.release(t.reserve("j")[1])  # a lone released attempt leaves nothing behind
    assert migrated_db.throttles.find_one({"_id": "j"}) is None


def test_a_rate_counter_outlives_its_window_by_the_purge_margin(migrated_db):
    """The TTL index purges by the database's clock: a counter kept only to its window's end by the app's
    clock would vanish early on a database whose clock runs ahead, and the window's count start again."""
    from idp.throttle import PURGE_MARGIN, RateLimit

    limit = RateLimit(migrated_db, 3, 600)
    assert limit.hit("k") == 0
    doc = migrated_db.throttles.find_one({"_id": {"$regex": "^k@"}})
    window_end = datetime.fromtimestamp(int(doc["_id"].split("@")[1]) + 600, timezone.utc)
    expires = doc["expires"] if doc["expires"].tzinfo else doc["expires"].replace(tzinfo=timezone.utc)
    assert expires >= window_end + PURGE_MARGIN
