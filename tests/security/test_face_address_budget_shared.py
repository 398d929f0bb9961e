"""A few accounts on one address cannot spend the face budget of everyone else behind it.

The per-address face limits were one first-come counter per address: five self-registered accounts
started 149 captures in 2 s, and every other user behind that address (an office or carrier NAT) got 429
``face_rate_limited`` for the rest of the window, so nobody there could sign in with their face. The
address's budget is now shared among its accounts (``SharedRateLimit``): past it, each account still gets
the budget divided by the accounts seen there. What the limit is for stays: one address spreading over many
accounts gets a bounded total, each newcomer less, none past ``budget`` accounts. Real app, real database;
every client of the test app comes from the same address (127.0.0.1)."""
from __future__ import annotations

import threading

import pytest

from idp import get_db
from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)

from ._face import consented_browser

pytestmark = pytest.mark.usefixtures("away_from_a_rate_window_edge")


def _network_limited(r) -> bool:
    if r.status_code != 429:
        return False
    body = r.get_json()
    assert body["error"] == "face_rate_limited" and "network" in body["message"], body
    assert 0 < int(r.headers["Retry-After"]) <= 600
    return True


def _starts_until_refused(b, cap=100) -> int:
    for n in range(cap):
        r = b.start("enroll")
        if _network_limited(r):
            return n
        assert r.status_code == 201, (r.status_code, r.get_json())
    raise AssertionError("never refused")


def test_accounts_draining_an_address_leave_its_other_accounts_their_share(make_app, new_user):
    budget = 30
    app = make_app(face_ip_captures=budget)  # per user: the default 30, as much as the whole budget
    attackers = [f"mallory{i}" for i in range(5)]
    for name in attackers + ["alice", "bob"]:
        new_user(name)
    browsers = [consented_browser(app, name) for name in attackers]
    got, active = [0] * len(browsers), set(range(len(browsers)))
    while active:  # the burst: the five accounts start captures in turn until each is refused
        for i in sorted(active):
            r = browsers[i].start("enroll")
            if _network_limited(r):
                active.discard(i)
            else:
                assert r.status_code == 201, (r.status_code, r.get_json())
                got[i] += 1
    assert got == [budget // 5] * 5  # together exactly the budget: each had its share when it was spent

    # Someone else behind the same address: before, 429 for the rest of the window.
    alice = consented_browser(app, "alice")
    r = alice.start("enroll")
    assert r.status_code == 201, (r.status_code, r.get_json())
    assert 1 + _starts_until_refused(alice) == budget // 6  # her share: the budget over the 6 accounts seen
    bob = consented_browser(app, "bob")
    assert _starts_until_refused(bob) == budget // 7
    assert all(_network_limited(b.start("enroll")) for b in browsers)  # the attackers got nothing back
    assert get_db(app).capture_sessions.count_documents({}) == budget + budget // 6 + budget // 7


def test_frames_past_the_address_budget_are_shared_too(make_app, new_user, people):
    app = make_app(face_ip_frames=4)
    for name in ("mallory", "alice"):
        new_user(name)
    mallory = consented_browser(app, "mallory")
    cap = mallory.start("enroll").get_json()
    assert [mallory.frame(cap, people["mallory"][k]).status_code for k in range(4)] == [200] * 4
    assert _network_limited(mallory.frame(cap, people["mallory"][4]))  # the budget spent, and her share
    alice = consented_browser(app, "alice")
    cap_a = alice.start("enroll").get_json()
    assert [alice.frame(cap_a, people["alice"][k]).status_code for k in range(2)] == [200, 200]  # 4 // 2
    assert _network_limited(alice.frame(cap_a, people["alice"][2]))
    assert _network_limited(mallory.frame(cap, people["mallory"][5]))


def test_one_address_spreading_over_many_accounts_stays_bounded(make_app, new_user):
    # The k-th account to arrive after the budget is spent gets budget // k, none once k > budget.
    budget = 4
    app = make_app(face_ip_captures=budget)
    names = [f"user{i}" for i in range(7)]
    for name in names:
        new_user(name)
    got = [_starts_until_refused(consented_browser(app, name)) for name in names]
    assert got == [4, 2, 1, 1, 0, 0, 0]
    assert get_db(app).capture_sessions.count_documents({}) == 8


@pytest.mark.parametrize("run", range(3))
def test_parallel_members_never_overshoot_the_budget_and_each_gets_its_share(db, run):
    # 8 members x 8 threads racing on one group: the budget is spent exactly once; past it every member is
    # admitted while under limit // n (one more event at most when it raced a newcomer).
    from idp.throttle import SharedRateLimit
    limit = SharedRateLimit(db, 40, 3600)
    group = f"g{run}"
    admitted: dict[str, int] = {}
    lock, barrier = threading.Lock(), threading.Barrier(64)

    def worker(member):
        barrier.wait()
        for _ in range(10):
            if limit.hit(group, member) == 0:
                with lock:
                    admitted[member] = admitted.get(member, 0) + 1
    threads = [threading.Thread(target=worker, args=(f"m{i % 8}",)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {d["_id"].split("#member:")[1].split("@")[0]: d["count"]
              for d in db.throttles.find({"_id": {"$regex": f"^{group}#member:"}})}
    assert counts == admitted and len(counts) == 8
    assert db.throttles.find_one({"_id": {"$regex": f"^{group}#members@"}})["count"] == 8
    # 640 events: the 40 of the budget, then the k-th member to join up to 40 // k (a member joining late
    # meets a smaller share), give or take one event per member that raced a newcomer
    assert 40 <= sum(admitted.values()) <= 40 + sum(40 // k for k in range(1, 9)) + 8
    assert all(c >= 40 // 8 for c in admitted.values())  # nobody was left below its final share
    assert db.throttles.find_one({"_id": {"$regex": f"^{group}@"}})["count"] == 640  # every event counted


from faceweb.conftest import (app, cheap_password_hashing, engine, make_app, new_user,  # noqa: F401, E402
                              people)
