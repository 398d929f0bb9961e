"""Face pages: capture sessions, per-user face status (consent, failures, lock), recovery codes, audit filters."""
from pymongo import ASCENDING, DESCENDING, IndexModel


def up(db):
    existing = set(db.list_collection_names())
    for name in ("face_status", "capture_sessions", "recovery_codes", "audit_log"):
        if name not in existing:
            db.create_collection(name)
    # capture_sessions already has the TTL index on ``expires`` (0001); look-ups by user for deletion.
    db.capture_sessions.create_index([("user_id", ASCENDING)], name="user")
    db.recovery_codes.create_indexes([
        IndexModel([("code_hash", ASCENDING)], unique=True, name="code_unique"),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ])
    db.audit_log.create_index([("event", ASCENDING), ("at", DESCENDING)], name="event_at")
