"""One-time links sent by email: email verification (24 h) and password reset (30 min). No Flask here.

The link carries a random 256-bit token; the database keeps only its SHA-256 (``email_tokens._id``), so a
database leak reveals no usable link. ``consume`` takes the token with one atomic ``find_one_and_delete``:
a link works once, also when two requests race, and never after ``expires``. A verification token is bound
to the address it was sent to: after another email change it proves nothing and is refused.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from idp.store import durable

VERIFY, RESET = "verify_email", "reset_password"
LIFETIME_S = {VERIFY: 24 * 3600, RESET: 30 * 60}
TOKEN_MAX = 100  # longer "tokens" are not ours: refused before hashing


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def issue(db, purpose: str, user_id: str | None, email: str | None = None) -> str:
    """A new token for ``user_id``; earlier unused tokens of the same purpose stop working. ``None``: a decoy
    that matches no account (same work for an unknown name)."""
    token = secrets.token_urlsafe(32)
    coll = durable(db, "email_tokens")
    coll.delete_many({"user_id": user_id, "purpose": purpose})
    now = _now()
    coll.insert_one({"_id": _hash(token), "purpose": purpose, "user_id": user_id, "email": email,
                     "created": now, "expires": now + timedelta(seconds=LIFETIME_S[purpose])})
    return token


def _valid_shape(token) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= TOKEN_MAX


def peek(db, purpose: str, token) -> dict | None:
    """The live token document (not used up), or None: expired, used, unknown or garbage."""
    if not _valid_shape(token):
        return None
    return db.email_tokens.find_one({"_id": _hash(token), "purpose": purpose, "expires": {"$gt": _now()}})


def consume(db, purpose: str, token) -> dict | None:
    """Use the token up (atomically, once) and return its document, or None."""
    if not _valid_shape(token):
        return None
    return durable(db, "email_tokens").find_one_and_delete(
        {"_id": _hash(token), "purpose": purpose, "expires": {"$gt": _now()}})


def revoke(db, user_id: str, purpose: str | None = None) -> int:
    query = {"user_id": user_id}
    if purpose:
        query["purpose"] = purpose
    return durable(db, "email_tokens").delete_many(query).deleted_count
