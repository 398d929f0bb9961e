"""One-time links sent by email: email verification (24 h), password reset (30 min) and the undo of an email
change (``IDP_EMAIL_UNDO_WINDOW``, 7 days). No Flask here.

The link carries a random 256-bit token; the database keeps only its SHA-256 (``email_tokens._id``), so a
database leak reveals no usable link. ``consume`` takes the token with one atomic ``find_one_and_delete``:
a link works once, also when two requests race, and never after ``expires``. A verification token is bound
to the address it was sent to: it proves something only while that address is the account's unconfirmed one or
its pending one (``users.confirm_email``), and is refused after another change. A reset token is
bound to the account as it was when the link was made (:func:`fits`): its address and its password. Changing
either deletes the account's links too, but a link made by a request that read the account before the change
and stored it after that deletion would otherwise outlive it. An undo token goes to the previous, confirmed
address when a change takes effect; it names that address (``email``, the one it restores) and the one it undoes
(``changed_to``), and fits only while the latter is still the account's (:func:`fits`). No password change or
reset voids it (an intruder holding the new mailbox would make both at once); a further change of the address
that takes effect does.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from idp.store import durable

VERIFY, RESET, UNDO = "verify_email", "reset_password", "undo_email_change"
LIFETIME_S = {VERIFY: 24 * 3600, RESET: 30 * 60}  # UNDO: the caller's lifetime_s (IDP_EMAIL_UNDO_WINDOW)
TOKEN_MAX = 100  # longer "tokens" are not ours: refused before hashing


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _password_mark(password_hash: str | None) -> str:
    """What a reset token keeps of the password hash it was made under: a digest (it reveals nothing usable)."""
    return hashlib.sha256(b"deepauth reset link:" + str(password_hash or "").encode()).hexdigest()


def issue(db, purpose: str, user_id: str | None, email: str | None = None, *, password_hash: str | None = None,
          changed_to: str | None = None, lifetime_s: int | None = None) -> str:
    """A new token for ``user_id``; earlier unused tokens of the same purpose stop working. ``None``: a decoy
    that matches no account (same work for an unknown name). ``password_hash``: the account's as read with
    ``email`` (a reset link, see :func:`fits`). ``changed_to``: the address an undo link undoes (``email`` is
    the one it restores). ``lifetime_s``: instead of ``LIFETIME_S`` (required for an undo link)."""
    token = secrets.token_urlsafe(32)
    coll = durable(db, "email_tokens")
    coll.delete_many({"user_id": user_id, "purpose": purpose})
    now = _now()
    doc = {"_id": _hash(token), "purpose": purpose, "user_id": user_id, "email": email,
           "created": now, "expires": now + timedelta(seconds=lifetime_s or LIFETIME_S[purpose])}
    if purpose == RESET:
        doc["password"] = _password_mark(password_hash)
    if purpose == UNDO:
        doc["changed_to"] = changed_to
    coll.insert_one(doc)
    return token


def fits(doc: dict, user: dict) -> bool:
    """Whether the reset token ``doc`` was made for ``user`` as it is now: sent to its (confirmed or, never
    confirmed, only) address ``email`` - never to a pending one - and made while its current password was set (a
    change of either since voids it). An undo token fits while the address it undoes (``changed_to``) is still
    the account's: after a further change it proves nothing about the account as it is. Verification links are
    checked by ``users.confirm_email`` instead (they go to the pending address)."""
    if doc.get("user_id") != user.get("_id"):
        return False
    if doc.get("purpose") == UNDO:
        return bool(doc.get("changed_to")) and doc.get("changed_to") == user.get("email")
    if doc.get("email") != user.get("email"):
        return False
    return doc.get("purpose") != RESET or doc.get("password") == _password_mark(user.get("password_hash"))


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


def reinstate(db, doc: dict) -> None:
    """Put back a token :func:`consume` took whose use then failed for a reason that may pass (the address to
    restore was taken meanwhile): it works again, until its own ``expires``."""
    durable(db, "email_tokens").insert_one(doc)


def revoke(db, user_id: str, purpose: str | None = None) -> int:
    query = {"user_id": user_id}
    if purpose:
        query["purpose"] = purpose
    return durable(db, "email_tokens").delete_many(query).deleted_count
