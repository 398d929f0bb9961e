"""Indexes for accounts, sessions, throttles, OAuth objects, face data and the audit log."""
from pymongo import ASCENDING, DESCENDING, IndexModel


def up(db):
    existing = set(db.list_collection_names())
    for name in ("users", "sessions", "throttles", "clients", "signing_keys", "auth_codes", "tokens",
                 "consents", "face_templates", "capture_sessions", "audit_log", "recovery_codes"):
        if name not in existing:
            db.create_collection(name)

    # Uniqueness lives in the database so that two racing registrations cannot both win.
    db.users.create_indexes([
        IndexModel([("username", ASCENDING)], unique=True, name="username_unique"),
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
    ])
    # Expired rows are purged by TTL indexes (expireAfterSeconds=0: at the stored instant).
    for name in ("sessions", "throttles", "auth_codes", "tokens", "capture_sessions"):
        db[name].create_index([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")
    db.auth_codes.create_index([("code_hash", ASCENDING)], unique=True, name="code_unique")
    db.tokens.create_indexes([
        IndexModel([("family", ASCENDING)], name="family"),
        IndexModel([("user_id", ASCENDING)], name="user"),
    ])
    db.consents.create_index([("user_id", ASCENDING), ("client_id", ASCENDING)], unique=True, name="user_client")
    db.signing_keys.create_index([("created_at", DESCENDING)], name="created")
    db.audit_log.create_indexes([
        IndexModel([("at", DESCENDING)], name="at"),
        IndexModel([("user_id", ASCENDING), ("at", DESCENDING)], name="user_at"),
    ])
