"""The ``face_status`` document of a user: the face feature's state besides the
template, without Flask::

    {_id: user_id, consent: {at, notice_version, ip}, failures, last_failure_at, locked_at,
     recovery_failures, recovery_last_failure_at, judging_until/judging_by,
     recovery_judging_until/recovery_judging_by, enroll_cooloff: {via, at}, cooloff_until, reset: {at, by},
     reenroll_required: {reason, at}, erasing: {at, claim}}

Written by :mod:`.notice`, :mod:`.lockout` (failures, lock, the judging reservation) and
:mod:`.reenrollment` (cooling-off, an administrator's reset, re-enrollment marks); claimed (``erasing``) and
removed by :mod:`.erasure`. Templates live in ``face_templates`` (``idp.face.repository``, encrypted), recovery codes in
``recovery_codes`` (:mod:`.recovery`), captures in ``capture_sessions`` (:mod:`.capture_sessions`).
"""
from __future__ import annotations

from datetime import datetime, timezone

from idp.store import durable

COLLECTION = "face_status"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(dt: datetime | None) -> datetime | None:
    """``dt`` as an aware UTC datetime (a database may return naive UTC)."""
    if dt is not None and dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def status_collection(db):
    """``face_status`` with journaled writes (a lost failure count or lock would weaken the limits)."""
    return durable(db, COLLECTION)


def get_status(db, user_id: str) -> dict:
    return db.face_status.find_one({"_id": user_id}) or {"_id": user_id}
