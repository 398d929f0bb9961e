"""Recovery, reset and cooling-off of the face template (in ``face_status``), without Flask.

A template enrolled after a recovery code, an administrator's reset, or a deletion from a sign-in that
did not pass the face, proves nothing about who enrolled it: it gives no amr "face" until
``cooloff_until`` (config ``face_recovery_cooloff_s``). ``enroll_cooloff`` marks that the next
enrollment starts such a period; ``reset`` is an administrator's grant to enroll after the password
alone, usable for ``face_reset_grant_lifetime_s`` after it was given; ``reenroll_required`` (``idp faces mark-reenroll``) makes the stored template unusable.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from .face_status import aware, status_collection, utcnow

VIA_RECOVERY, VIA_ADMIN_RESET, VIA_DELETED = "recovery", "admin_reset", "deleted"


def cooloff_until(db, user_id: str) -> datetime | None:
    """When the user's template may give amr "face" again, while that is in the future; else None."""
    doc = db.face_status.find_one({"_id": user_id}, {"cooloff_until": 1}) or {}
    until = aware(doc.get("cooloff_until"))
    return until if until is not None and until > utcnow() else None


def enroll_cooloff_mark(db, user_id: str) -> dict | None:
    """The stored ``enroll_cooloff`` mark ({via, at}), or None. An enrollment reads it before it saves its template
    and hands it to :func:`after_enrollment`, which lifts that mark alone."""
    return (db.face_status.find_one({"_id": user_id}, {"enroll_cooloff": 1}) or {}).get("enroll_cooloff") or None


def enrollment_cooloff_via(mark: dict | None) -> str | None:
    """Why the next enrollment starts a cooling-off period (recovery, deleted), or None, from the ``mark`` it read
    (:func:`enroll_cooloff_mark`: read once, so the period and the mark lifted later are the same one's). An
    administrator's reset counts only when the enrollment uses it (the capture's grant): a grant left unused or
    expired does not turn a later re-enrollment confirmed by a face match into a reset."""
    return (mark.get("via") or VIA_RECOVERY) if mark else None


def start_cooloff(db, user_id: str, cooloff_s: int) -> datetime | None:
    """Start a cooling-off period of ``cooloff_s`` now (never shortening one that runs); its end, or None with
    ``cooloff_s`` 0. An enrollment that starts one does so before its template is saved (and again after, see
    :func:`after_enrollment`): a face check that loads the new template then reads the period too."""
    if cooloff_s <= 0:
        return None
    until = utcnow() + timedelta(seconds=int(cooloff_s))
    running = cooloff_until(db, user_id)
    until = max(until, running) if running else until
    status_collection(db).update_one({"_id": user_id}, {"$set": {"cooloff_until": until}}, upsert=True)
    return until


def after_enrollment(db, user_id: str, cooloff_s: int, via: str | None, mark: dict | None = None) -> datetime | None:
    """A new template was stored: clear the reset grant and the re-enrollment mark, lift ``mark`` (the
    ``enroll_cooloff`` mark the enrollment read before its save, :func:`enroll_cooloff_mark`) and with ``via``
    start the cooling-off period (:func:`start_cooloff`). Returns its end, or None (no period). A mark written
    since (a deletion by a recovery-code sign-in that overtook the enrollment) is not the one read: it stays, and
    the next enrollment starts its cooling-off period."""
    until = start_cooloff(db, user_id, cooloff_s) if via is not None else None
    coll = status_collection(db)
    coll.update_one({"_id": user_id}, {"$unset": {"reset": "", "reenroll_required": ""}}, upsert=True)
    if mark:
        coll.update_one({"_id": user_id, "enroll_cooloff.via": mark.get("via"), "enroll_cooloff.at": mark.get("at")},
                        {"$unset": {"enroll_cooloff": ""}})
    return until


def grant_reset(db, user_id: str, admin_id: str | None) -> None:
    """An administrator's reset: the lock and failures lifted, the failed captures' face hashes dropped,
    and one enrollment allowed after the password alone (the template it creates starts a cooling-off
    period)."""
    status_collection(db).update_one(
        {"_id": user_id}, {"$set": {"failures": 0, "reset": {"at": utcnow(), "by": admin_id}},
                           "$unset": {"locked_at": "", "last_failure_at": "", "unsettled": "", "unsettled_by": ""}}, upsert=True)
    # what failed captures left in the replay store goes too (it may be an attacker's doing)
    db.liveness_face_hashes.delete_many({"user_id": user_id, "failed": True})


def reset_grant_until(db, user_id: str, lifetime_s: int) -> datetime | None:
    """Until when the administrator's reset grant of ``user_id`` allows an enrollment after the password
    alone, while that is in the future; else None (no grant, an expired one, or one without a time)."""
    reset = (db.face_status.find_one({"_id": user_id}, {"reset": 1}) or {}).get("reset")
    at = reset.get("at") if isinstance(reset, dict) else None
    if not isinstance(at, datetime):
        return None
    until = aware(at) + timedelta(seconds=int(lifetime_s))
    return until if until > utcnow() else None


def reset_granted(db, user_id: str, lifetime_s: int) -> bool:
    """The grant exists and is younger than ``lifetime_s``: an expired grant lets nobody enroll (it still
    makes the next enrollment start a cooling-off period, see :func:`enrollment_cooloff_via`)."""
    return reset_grant_until(db, user_id, lifetime_s) is not None


def mark_reenroll(db, user_id: str, reason: str, **details) -> None:
    """The stored template may not be used any more (e.g. a model change); recovery or reset re-enrolls."""
    status_collection(db).update_one(
        {"_id": user_id}, {"$set": {"reenroll_required": {"reason": reason, "at": utcnow(), **details}}}, upsert=True)


def reenroll_required(db, user_id: str) -> dict | None:
    return (db.face_status.find_one({"_id": user_id}, {"reenroll_required": 1}) or {}).get("reenroll_required")
