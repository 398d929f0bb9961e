"""Key-based throttling of failed attempts with exponentially growing delays (no Flask here).

Usage (the password checks go through ``idp.accounts.guard``, which reserves before it verifies)::

    t = Throttle(db, free_failures=5, base_delay_s=30, max_delay_s=3600)
    wait, held = t.reserve("pwd:user:<uid>")   # counts the attempt now; wait > 0: refused, nothing counted
    ... attempt ...
    t.success("pwd:user:<uid>")                # forget the failures, or t.release(held): it was no failure

``reserve`` counts an attempt as a failure *before* it is made, with a compare-and-set on the record, so
parallel attempts cannot all pass a check made before any of them is recorded: with 5 free failures at
most 5 attempts run, however many arrive at once. ``check`` and ``failures`` only read the state.

After ``free_failures`` consecutive failures every further failure blocks the
key for base, 2*base, 4*base, ... seconds, capped at ``max_delay_s``: never a
permanent lock. State lives in the ``throttles`` collection as
``{_id: key, failures, last_failure, blocked_until, expires}`` and is changed
only with atomic single-document updates (``$inc``, ``$max``), so every process
and thread sees the same count. A key forgets its failures ``reset_after_s``
after its last block ends (``expires``, purged by the TTL index).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Reservation:
    """One attempt counted by ``Throttle.reserve`` (``blocked_until``: the block it started, if any)."""
    key: str
    blocked_until: datetime | None
    created: bool = False  # this attempt created the record


RESERVE_ROUNDS = 200  # compare-and-set retries; each lost round means another attempt was counted


class Throttle:
    def __init__(self, db: Database, free_failures: int, base_delay_s: float, max_delay_s: float, *,
                 reset_after_s: float = 24 * 3600, collection: str = "throttles"):
        self.coll = db[collection]
        self.free_failures = max(0, int(free_failures))
        self.base_delay_s = float(base_delay_s)
        self.max_delay_s = float(max_delay_s)
        self.reset_after = timedelta(seconds=reset_after_s)

    def delay_for(self, failures: int) -> float:
        """Seconds a key is blocked after its ``failures``-th consecutive failure."""
        over = failures - self.free_failures
        if over < 0 or self.base_delay_s <= 0:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * (2 ** min(over, 40)))

    def _live(self, doc: dict | None, now: datetime) -> dict | None:
        # The TTL monitor runs only about once a minute: treat an expired record as gone.
        if doc is None or (doc.get("expires") and doc["expires"] <= now):
            return None
        return doc

    def check(self, key: str) -> int:
        """Seconds (rounded up) until ``key`` may try again; 0 when allowed now."""
        now = _now()
        return self._wait(self._live(self.coll.find_one({"_id": key}), now), now)

    @staticmethod
    def _wait(doc: dict | None, now: datetime) -> int:
        if not doc or not doc.get("blocked_until"):
            return 0
        remaining = (doc["blocked_until"] - now).total_seconds()
        return max(0, math.ceil(remaining))

    def reserve(self, key: str) -> tuple[int, Reservation | None]:
        """Count one attempt on ``key`` before it is made.

        Returns ``(0, reservation)`` when the attempt may run (it already counts as a failure: call
        ``success`` or ``release`` if it was not one), or ``(wait, None)`` when the key is blocked (nothing
        counted). The attempt that reaches a delay starts the block in the same atomic write, so no
        parallel attempt can slip in between. Fails closed (a 1 s wait) under pathological contention."""
        for _ in range(RESERVE_ROUNDS):
            now = _now()
            raw = self.coll.find_one({"_id": key})
            doc = self._live(raw, now)
            wait = self._wait(doc, now)
            if wait:
                return wait, None
            count = int(doc.get("failures", 0)) + 1 if doc else 1
            delay = self.delay_for(count)
            until = now + timedelta(seconds=delay) if delay > 0 else None
            expires = (until or now) + self.reset_after
            if doc is None:
                if raw is not None:  # expired but not purged yet: start over
                    self.coll.delete_one({"_id": key, "expires": raw["expires"]})
                fresh = {"_id": key, "failures": 1, "last_failure": now, "expires": expires}
                if until:
                    fresh["blocked_until"] = until
                try:
                    self.coll.insert_one(fresh)
                except DuplicateKeyError:  # a parallel first attempt won: count on its record
                    continue
                return 0, Reservation(key, until, created=True)
            changes = {"failures": count, "last_failure": now, "expires": max(expires, doc["expires"])}
            if until:
                changes["blocked_until"] = until
            # compare-and-set on the state just read: only one of several parallel attempts wins a round
            won = self.coll.update_one({"_id": key, "failures": doc.get("failures", 0),
                                        "blocked_until": doc.get("blocked_until")}, {"$set": changes})
            if won.matched_count:
                return 0, Reservation(key, until)
        return 1, None

    def release(self, held: Reservation | None) -> None:
        """Take back an attempt counted by ``reserve`` that turned out not to be a failure."""
        if held is None:
            return
        if held.created and self.coll.delete_one({"_id": held.key, "failures": 1}).deleted_count:
            return  # the usual right password: its record held only this attempt
        self.coll.update_one({"_id": held.key, "failures": {"$gt": 0}}, {"$inc": {"failures": -1}})
        if held.blocked_until is not None:  # the block this attempt started, unless a later one replaced it
            self.coll.update_one({"_id": held.key, "blocked_until": held.blocked_until},
                                 {"$unset": {"blocked_until": ""}})
        self.coll.delete_one({"_id": held.key, "failures": {"$lte": 0}})

    def failures(self, key: str) -> int:
        """The key's consecutive failures counted so far (0 once forgotten)."""
        doc = self._live(self.coll.find_one({"_id": key}), _now())
        return int(doc.get("failures", 0)) if doc else 0

    def success(self, key: str) -> None:
        """Forget the key's failures (a successful attempt)."""
        self.coll.delete_one({"_id": key})


def wait_text(seconds: int) -> str:
    """A wait in words for the user ("45 seconds", "3 minutes"), rounded up to whole minutes from 2 minutes."""
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


#: How long after its window a rate counter may still be kept (clock differences between app and database).
PURGE_MARGIN = timedelta(minutes=5)


def _counter(doc_id: str, count: int, expires: datetime, owner: str | None) -> dict:
    """A rate counter's document (``owner``: the account whose events it counts, stored as ``user_id``)."""
    doc = {"_id": doc_id, "count": count, "expires": expires}
    if owner is not None:
        doc["user_id"] = owner
    return doc


class RateLimit:
    """At most ``limit`` events per key in each fixed window of ``window_s`` seconds.

    For work that is legitimate but must not be unbounded (face frames, capture sessions), where
    :class:`Throttle`'s consecutive-failure semantics do not fit: a count that only ends after a quiet
    period would, on a busy shared address, never end. The count lives in the same ``throttles``
    collection as ``{_id: "<key>@<window start>", count, expires, user_id?}`` (purged by the TTL index
    PURGE_MARGIN after the end of the window; ``user_id``: the account whose events a counter counts, the
    ``owner`` given to ``hit``, so that deleting the account erases it at once: ``users.delete_user``) and
    is raised with atomic single-document writes by ``_id`` (constant cost however many counters are
    stored), so every thread, process and instance shares it and parallel requests cannot overshoot.
    Refused events are counted too; that changes nothing, since the window ends at a fixed time.
    """

    def __init__(self, db: Database, limit: int, window_s: int, *, collection: str = "throttles"):
        self.coll = db[collection]
        self.limit = int(limit)
        self.window_s = max(1, int(window_s))

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def hit(self, key: str, *, owner: str | None = None) -> int:
        """Count one event of ``key``; 0 when it is within the limit, else the seconds (rounded up)
        until the window ends. A limit of 0 or less turns the limit off. ``owner``: the account id when
        ``key`` counts one account's events (recorded as the counter's ``user_id``)."""
        return self.hit_telling_first_refusal(key, owner=owner)[0]

    def hit_telling_first_refusal(self, key: str, *, owner: str | None = None) -> tuple[int, bool]:
        """``hit``, and whether this event is the first refused of its key and window: exactly one event
        per key and window is (the one that raised the count from the limit), however many run at once."""
        if not self.enabled:
            return 0, False
        return self._hit_at(key, _now(), owner)

    def window(self, now: datetime) -> tuple[int, datetime]:
        """The window ``now`` falls in: its start (epoch seconds, a multiple of ``window_s``) and its end."""
        start = math.floor(now.timestamp() / self.window_s) * self.window_s
        return start, datetime.fromtimestamp(start + self.window_s, timezone.utc)

    def _hit_at(self, key: str, now: datetime, owner: str | None = None) -> tuple[int, bool]:
        start, end = self.window(now)
        doc_id = f"{key}@{start}"
        # Single-document writes by ``_id`` only (``find_one_and_update`` scans the collection on the embedded
        # SecantusDB): an event within the limit is the one update that raises the count while it is below
        # the limit, or the insert of the window's first event (a racing first event gets DuplicateKeyError and
        # takes the update); so parallel events never overshoot and none within the limit is refused.
        below = {"_id": doc_id, "count": {"$lt": self.limit}}
        if self.coll.update_one(below, {"$inc": {"count": 1}}).modified_count:
            return 0, False
        try:
            # purged a while after the window ends: a database clock ahead of this one must not delete a
            # live counter (the id names its window, so a late purge changes nothing)
            self.coll.insert_one(_counter(doc_id, 1, end + PURGE_MARGIN, owner))
            return 0, False
        except DuplicateKeyError:  # the window's counter exists: full, or just made by a parallel first event
            pass
        if self.coll.update_one(below, {"$inc": {"count": 1}}).modified_count:
            return 0, False
        # Over the limit, counted all the same; the count only grows, so it is at least the limit here and
        # exactly one event finds it equal to the limit.
        first = bool(self.coll.update_one({"_id": doc_id, "count": self.limit},
                                          {"$inc": {"count": 1}}).modified_count)
        if not first:
            self.coll.update_one({"_id": doc_id}, {"$inc": {"count": 1}})
        return max(1, math.ceil((end - now).total_seconds())), first


class SharedRateLimit:
    """At most ``limit`` events per group (a client address) in each fixed window, shared among the group's
    members (the accounts behind it) so that no member can take the others' part.

    A plain per-group :class:`RateLimit` lets a few members spend the whole budget at the start of a window and
    so refuse every other member until it ends (a handful of self-registered accounts locking the face step
    of a whole office or carrier NAT). Here an event is allowed while the group's budget lasts (the same
    ``RateLimit`` counter, refused events counted) **or** while its member has had fewer than ``limit // n``
    events in the window, ``n`` being the members seen in the group in this window, the asking one included.
    Guaranteed whatever the other members do:

    - every member gets at least ``limit // n`` events per window, its fair share: cutting a member's share
      down to ``s`` events takes ``limit / s`` members active in the same window, not a burst from a few;
    - a group's total stays bounded however many members it spreads over: past the budget, the ``k``-th
      member to arrive gets ``limit // k`` events at most, none once ``k > limit``; so ``k`` members get at
      most ``limit * (1 + H(k))`` events in a window (H the harmonic number, about ``ln(k) + 0.58``: 5.5
      times the budget for 50 members), and no number of members more than ``limit * (1 + H(limit))``;
    - an event the plain per-group limit would allow is allowed: nobody gets a stricter limit.

    The events admitted are counted per ``(group, member)`` and the members per group, beside the budget's
    counter and in the same window (a member is an account id: its counter, which pairs the account with the
    group, records it as ``user_id`` and is erased with the account by ``users.delete_user``; the group's
    budget and its number of members, shared with the other members, stay until they expire), with
    single-document writes by ``_id`` (shared by every process and instance). ``n`` is read before the member's conditional increment, so events of a member that race
    newcomers may be admitted under the share read before it shrank (past the budget, the ``k``-th member to
    join never beyond ``limit // k``: it reads ``n >= k``); the budget itself never overshoots. A limit of 0
    or less is off.
    """

    def __init__(self, db: Database, limit: int, window_s: int, *, collection: str = "throttles"):
        self.budget = RateLimit(db, limit, window_s, collection=collection)
        self.coll = self.budget.coll

    @property
    def limit(self) -> int:
        return self.budget.limit

    def hit(self, group: str, member: str) -> int:
        """Count one event of ``member`` (an account id) in ``group``; 0 when allowed, else the seconds (rounded
        up) until the window ends."""
        if not self.budget.enabled:
            return 0
        now = _now()
        start, end = self.budget.window(now)
        expires = end + PURGE_MARGIN
        mine, members = f"{group}#member:{member}@{start}", f"{group}#members@{start}"
        wait, _ = self.budget._hit_at(group, now)
        if not wait:  # within the budget: counted as the member's too
            if not self.coll.update_one({"_id": mine}, {"$inc": {"count": 1}}).matched_count:
                self._join(mine, members, expires, member, admitted=True)
            return 0
        self._join(mine, members, expires, member, admitted=False)  # the asking member counts among the n
        doc = self.coll.find_one({"_id": members})
        share = self.limit // max(1, int(doc["count"]) if doc else 1)
        if share > 0 and self.coll.update_one({"_id": mine, "count": {"$lt": share}},
                                              {"$inc": {"count": 1}}).modified_count:
            return 0
        return wait

    def _join(self, mine: str, members: str, expires: datetime, member: str, *, admitted: bool) -> None:
        """Make the member's counter ``mine`` (its first event of the window: one more member of the group);
        when a parallel event made it first, count an ``admitted`` event on it."""
        if self._create(mine, expires, count=int(admitted), owner=member):
            if not self.coll.update_one({"_id": members}, {"$inc": {"count": 1}}).matched_count \
                    and not self._create(members, expires, count=1):
                self.coll.update_one({"_id": members}, {"$inc": {"count": 1}})
        elif admitted:
            self.coll.update_one({"_id": mine}, {"$inc": {"count": 1}})

    def _create(self, doc_id: str, expires: datetime, count: int, owner: str | None = None) -> bool:
        """Insert the counter ``doc_id``; False when it exists already (made by an earlier or parallel event)."""
        try:
            self.coll.insert_one(_counter(doc_id, count, expires, owner))
            return True
        except DuplicateKeyError:
            return False
