"""Browsers known to an account (collection ``known_devices``; no Flask here).

A browser carries a random device token in a long-lived cookie (``idp.accounts.views``); the database keeps,
per account, only ``sha256(user_id + ":" + token)`` as ``_id`` with ``user_id``, ``created``, ``last_seen`` and
``expires`` (a TTL index purges a row ``MAX_AGE_S`` after the browser was last seen; each sighting pushes it
on). The token itself is never stored or logged: a database dump names no cookie, and a row proves nothing about
another account. Every instance reads the same rows, so the answer does not depend on which one serves.

Not the known-browser cookie of the password throttle (``idp.accounts.guard``): that one vouches for the
password itself and ends with it (a change or reset voids it), so a browser that signed in before a password
change would be "new" after it; this one names the browser, outlives password changes and is kept per account
on the server, so the owner hears of browsers, not of their own password changes.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from pymongo.database import Database

COLLECTION = "known_devices"
MAX_AGE_S = 400 * 24 * 3600  # the cookie's Max-Age, and how long an unseen browser stays known
TOKEN_BYTES = 24
_TOKEN_MAX = 64  # a cookie longer than any token we set is none of ours


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def usable_token(token) -> bool:
    """Whether ``token`` (a cookie's value as sent) can be one of ours: worth looking up and keeping."""
    return isinstance(token, str) and 0 < len(token) <= _TOKEN_MAX


def _id(uid: str, token: str) -> str:
    return hashlib.sha256(f"{uid}:{token}".encode()).hexdigest()


def seen(db: Database, uid: str, token: str | None) -> bool:
    """Record that the browser of ``token`` signed in to ``uid`` now; whether it was known for the account before.

    One atomic upsert: of parallel sign-ins of one new browser, exactly one finds it unknown (the row's creation
    is the one ``created`` set on insert). An unusable token (none, not ours) is never known and stores nothing.
    """
    if not usable_token(token):
        return False
    now = datetime.now(timezone.utc)
    before = db[COLLECTION].find_one_and_update(
        {"_id": _id(uid, token)},
        {"$set": {"last_seen": now, "expires": now + timedelta(seconds=MAX_AGE_S)},
         "$setOnInsert": {"user_id": uid, "created": now}},
        upsert=True, projection={"_id": 1})
    return before is not None

