"""Face (and recovery-code) failures per user: delay, lock, the charge of an attempt before it is judged,
and the reservation that makes one check at a time per user (in ``face_status``), without Flask. ``prefix``
"recovery_" keeps the recovery-code counters apart from the face's; only face failures lock."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from .face_status import aware, status_collection, utcnow

JUDGING_S = 30  # a reservation of a user's face (or recovery-code) check expires after this (crashed worker)


@dataclass
class Limits:
    free_failures: int = 5
    lock_after: int = 10
    base_delay_s: int = 30
    max_delay_s: int = 3600

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(free_failures=config.face_free_failures, lock_after=config.face_lock_after,
                   base_delay_s=config.face_base_delay_s, max_delay_s=max(config.login_max_delay_s,
                                                                          config.face_base_delay_s))

    def delay_after(self, failures: int) -> int:
        """Seconds to wait after ``failures`` consecutive failures (0 while they are free)."""
        if failures < self.free_failures:
            return 0
        return int(min(self.max_delay_s, self.base_delay_s * (2 ** (failures - self.free_failures))))


@dataclass
class LockState:
    failures: int
    locked: bool
    wait_s: int  # seconds before the next attempt is allowed (0 = now)
    locked_now: bool = False  # (register_failure) this very failure locked face sign-in


def lock_state(db, user_id: str, limits: Limits, *, prefix: str = "") -> LockState:
    return _state_of(db.face_status.find_one({"_id": user_id}) or {}, limits, prefix=prefix)


def _state_of(doc: dict, limits: Limits, *, prefix: str = "") -> LockState:
    failures = int(doc.get(prefix + "failures") or 0)
    locked = bool(doc.get("locked_at")) if not prefix else False
    wait = 0
    last = aware(doc.get(prefix + "last_failure_at"))
    delay = limits.delay_after(failures)
    if delay and last is not None:
        wait = max(0, int((last + timedelta(seconds=delay) - utcnow()).total_seconds() + 0.999))
    return LockState(failures=failures, locked=locked, wait_s=wait)


def register_failure(db, user_id: str, limits: Limits) -> LockState:
    """Count one more consecutive face failure that was not charged before it was judged (e.g. a capture
    abandoned, or refused while filming); returns the new state. ``failures`` is this failure's own number
    (from the atomic increment, not a re-read: failures counted in parallel each get theirs), and
    ``locked_now`` is true for the one request whose update locked face sign-in."""
    now = utcnow()
    update = {"$inc": {"failures": 1}, "$set": {"last_failure_at": now}}
    try:
        doc = status_collection(db).find_one_and_update({"_id": user_id}, update, upsert=True,
                                                        return_document=ReturnDocument.AFTER)
    except DuplicateKeyError:  # two first failures at once: the other one created the document
        doc = status_collection(db).find_one_and_update({"_id": user_id}, update,
                                                        return_document=ReturnDocument.AFTER)
    return _counted(db, user_id, limits, int(doc.get("failures") or 0), now)


def _counted(db, user_id: str, limits: Limits, failures: int, now, *, prefix: str = "") -> LockState:
    """The state after the face failure numbered ``failures`` was counted: the one that reaches ``lock_after``
    locks face sign-in (``locked_now`` for the request whose update did)."""
    locked_now = False
    if not prefix and failures >= limits.lock_after:
        locked_now = status_collection(db).update_one({"_id": user_id, "locked_at": None},
                                                      {"$set": {"locked_at": now}}).modified_count == 1
    state = lock_state(db, user_id, limits, prefix=prefix)
    return LockState(failures=failures, locked=state.locked or locked_now, wait_s=state.wait_s,
                     locked_now=locked_now)


@dataclass
class Charge:
    """An attempt (a face, or with ``prefix`` "recovery_" a recovery code) counted before it is judged
    (:func:`charge_attempt`)."""
    failures: int  # its number in the run of consecutive failures
    at: datetime  # when it was charged (its last_failure_at)
    previous_at: datetime | None  # the last_failure_at it replaced (None: none), restored by refund_attempt


CHARGE_TRIES = 5  # compare-and-swap rounds before a charge gives up (busy)


def charge_attempt(db, user_id: str, limits: Limits, *, prefix: str = "") -> Charge | None:
    """Count an attempt as a failure *before* it is judged, in one compare-and-swap on the count, refused
    (None) while a waiting time runs, the count keeps changing under it, or (face only) face sign-in is locked
    or the count already reached ``lock_after``. So however many requests judge at once (a reservation of
    :func:`reserve_judging` that expired, another worker), no more attempts are judged than the limits allow.
    The judged attempt then ends as a failure (:func:`charged_failure`), a success (:func:`reset_failures`),
    or as no attempt at all (:func:`refund_attempt`). ``prefix`` "recovery_" charges a recovery-code check
    on its own counter, which the face lock does not refuse (a code is the way out of it)."""
    coll = status_collection(db)
    count, last = prefix + "failures", prefix + "last_failure_at"
    unlocked = {} if prefix else {"locked_at": None}
    for _ in range(CHARGE_TRIES):
        doc = coll.find_one({"_id": user_id})
        if doc is None:
            try:  # (made by the consent, or the reservation, before any attempt is judged)
                coll.insert_one({"_id": user_id, count: 0})
            except DuplicateKeyError:
                pass
            continue
        state = _state_of(doc, limits, prefix=prefix)
        if state.locked or state.wait_s or (not prefix and state.failures >= limits.lock_after):
            return None
        now = utcnow()
        seen = {"$in": [0, None]} if state.failures == 0 else state.failures
        if coll.update_one({"_id": user_id, count: seen, **unlocked},
                           {"$set": {count: state.failures + 1, last: now}}).modified_count:
            return Charge(failures=state.failures + 1, at=now, previous_at=doc.get(last))
    return None


def charged_failure(db, user_id: str, limits: Limits, charge: Charge, *, prefix: str = "") -> LockState:
    """The charged attempt failed: it stays counted (and a face attempt locks face sign-in if it reached the
    lock)."""
    return _counted(db, user_id, limits, charge.failures, charge.at, prefix=prefix)


def refund_attempt(db, user_id: str, charge: Charge, *, prefix: str = "") -> None:
    """The charged attempt was no attempt (not judged, nothing decided): the count goes back, unless anything
    else was counted (or reset) since, in which case it stays as it is (fail closed). The count and the charge's
    own ``last_failure_at`` are compared: a count reset and counted up to the same number again meanwhile holds
    real failures, none of which is taken back. (A face charge is not refunded once face sign-in got locked.)"""
    count, last = prefix + "failures", prefix + "last_failure_at"
    restore = ({"$set": {count: charge.failures - 1, last: charge.previous_at}}
               if charge.previous_at is not None else
               {"$set": {count: charge.failures - 1}, "$unset": {last: ""}})
    unlocked = {} if prefix else {"locked_at": None}
    status_collection(db).update_one({"_id": user_id, count: charge.failures, last: charge.at, **unlocked},
                                     restore)


def reset_failures(db, user_id: str, *, unlock: bool = False, prefix: str = "") -> None:
    update = {"$set": {prefix + "failures": 0}, "$unset": {prefix + "last_failure_at": ""}}
    if unlock:  # a fresh start: captures left open before are not charged afterwards
        update["$unset"]["locked_at"] = ""
        update["$unset"]["unsettled"] = ""
        update["$unset"]["unsettled_by"] = ""
    status_collection(db).update_one({"_id": user_id}, update)


def reserve_judging(db, user_id: str, *, prefix: str = "", seconds: int | None = None) -> str | None:
    """Reserve the user's face check (``prefix`` "recovery_": recovery-code check) for one request, so
    that parallel requests cannot each pass the lock/delay check before any failure is counted.
    Returns a token for :func:`release_judging`, or None while another check holds the reservation.
    ``seconds``: how long it holds (default :data:`JUDGING_S`)."""
    seconds = JUDGING_S if seconds is None else seconds
    field, owner = prefix + "judging_until", prefix + "judging_by"
    now = utcnow()
    token = secrets.token_urlsafe(12)
    coll = status_collection(db)
    for _ in range(2):
        done = coll.update_one({"_id": user_id, "$or": [{field: {"$exists": False}}, {field: None},
                                                        {field: {"$lt": now}}]},
                               {"$set": {field: now + timedelta(seconds=seconds), owner: token}})
        if done.modified_count:
            return token
        if coll.find_one({"_id": user_id}, {"_id": 1}) is not None:
            return None  # the document exists and another check holds it
        try:  # no face_status document yet: create it reserved
            coll.insert_one({"_id": user_id, field: now + timedelta(seconds=seconds), owner: token})
            return token
        except DuplicateKeyError:  # created meanwhile (by another check, or consent): look again
            continue
    return None


def release_judging(db, user_id: str, token: str, *, prefix: str = "") -> None:
    """End a reservation of :func:`reserve_judging` (only this one: it may have expired and been taken)."""
    status_collection(db).update_one({"_id": user_id, prefix + "judging_by": token},
                                           {"$unset": {prefix + "judging_until": "", prefix + "judging_by": ""}})
