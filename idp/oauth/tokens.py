"""Authorization codes and tokens in MongoDB (no Flask).

``auth_codes``: ``{_id, code_hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
code_challenge_method, auth_time, amr, acr, created_at, expires, used, reused}``. Codes are single use:
redemption is an atomic compare-and-set on ``used``; a second redemption marks the code ``reused`` and
revokes the tokens issued from it.

``tokens``: one document per grant, the refresh-token *family* (``_id == family``)::

    {_id, family, client_id, user_id, scopes: [granted...], scope: "current access token scope",
     access_hash, access_expires, refresh_hash?, refresh_expires?, old_refresh_hashes: [...],
     code_id, auth_time, amr, acr, issued_at, rotated_at, rotations, revoked, expires}

Rotating a refresh token swaps the access/refresh hashes in one ``find_one_and_update`` (the old
refresh hash moves to ``old_refresh_hashes``); presenting an old refresh token again revokes the whole
family. Token values are 256-bit random strings stored as SHA-256 hex. ``expires`` feeds the TTL index.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from pymongo import ReturnDocument

from idp.store import durable

OLD_REFRESH_KEPT = 50


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- authorization codes ------------------------------------------------------------

def save_code(db, config, code: str, *, client_id: str, user_id: str, redirect_uri: str, scope: str,
              nonce: str | None, code_challenge: str | None, code_challenge_method: str | None,
              auth_time: int | None, amr: list, acr: str | None) -> dict:
    now = _now()
    doc = {
        "_id": secrets.token_urlsafe(12), "code_hash": digest(code), "client_id": client_id, "user_id": user_id,
        "redirect_uri": redirect_uri, "scope": scope, "nonce": nonce, "code_challenge": code_challenge,
        "code_challenge_method": code_challenge_method, "auth_time": auth_time, "amr": list(amr or []),
        "acr": acr, "created_at": now, "expires": now + timedelta(seconds=config.code_lifetime_s),
        "used": False, "reused": False,
    }
    db.auth_codes.insert_one(doc)
    return doc


def redeem_code(db, code: str, client_id: str) -> dict | None:
    """Mark the code used and return it, or None when it is unknown, expired, for another client or
    already used (a reuse also revokes the tokens issued from it)."""
    h = digest(code)
    codes = durable(db, "auth_codes")
    doc = codes.find_one_and_update(
        {"code_hash": h, "used": False, "client_id": client_id, "expires": {"$gt": _now()}},
        {"$set": {"used": True, "used_at": _now()}}, return_document=ReturnDocument.AFTER)
    if doc is not None:
        return doc
    old = codes.find_one_and_update({"code_hash": h, "used": True}, {"$set": {"reused": True}})
    if old is not None:
        revoke_code_tokens(db, old["_id"], reason="code_reuse")
    return None


def code_was_reused(db, code_id: str) -> bool:
    doc = db.auth_codes.find_one({"_id": code_id}, {"reused": 1})
    return bool(doc and doc.get("reused"))


# --- tokens --------------------------------------------------------------------------

def issue(db, config, *, client_id: str, user_id: str, scope: str, access_token: str,
          refresh_token: str | None, auth_time: int | None, amr: list, acr: str | None,
          code_id: str | None = None) -> dict:
    now = _now()
    family = secrets.token_urlsafe(16)
    access_expires = now + timedelta(seconds=config.access_token_lifetime_s)
    doc = {
        "_id": family, "family": family, "client_id": client_id, "user_id": user_id,
        "scopes": scope.split(), "scope": scope, "access_hash": digest(access_token),
        "access_expires": access_expires, "old_refresh_hashes": [], "code_id": code_id,
        "auth_time": auth_time, "amr": list(amr or []), "acr": acr, "issued_at": now, "rotated_at": None,
        "rotations": 0, "revoked": False, "expires": access_expires,
    }
    if refresh_token:
        doc["refresh_hash"] = digest(refresh_token)
        doc["refresh_expires"] = now + timedelta(seconds=config.refresh_token_lifetime_s)
        doc["expires"] = max(doc["refresh_expires"], access_expires)
    durable(db, "tokens").insert_one(doc)
    return doc


def rotate_refresh(db, config, refresh_token: str, client_id: str, new_access: str, new_refresh: str,
                   scope: str | None = None) -> tuple[dict | None, str | None]:
    """Swap a valid refresh token for ``new_access``/``new_refresh`` in one atomic update.

    Returns ``(doc_after, None)`` on success, or ``(None, error)`` with error ``"invalid_grant"`` or
    ``"invalid_scope"``. An old (already rotated) refresh token revokes its whole family.
    """
    h = digest(refresh_token)
    now = _now()
    query = {"refresh_hash": h, "client_id": client_id, "revoked": False, "refresh_expires": {"$gt": now}}
    requested = scope.split() if scope else None
    if requested:
        query["scopes"] = {"$all": requested}
    update = {
        "$set": {"access_hash": digest(new_access), "refresh_hash": digest(new_refresh),
                 "access_expires": now + timedelta(seconds=config.access_token_lifetime_s), "rotated_at": now},
        "$push": {"old_refresh_hashes": {"$each": [h], "$slice": -OLD_REFRESH_KEPT}},
        "$inc": {"rotations": 1},
    }
    if requested:
        update["$set"]["scope"] = " ".join(requested)
    tokens = durable(db, "tokens")
    doc = tokens.find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
    if doc is not None:
        if not requested and doc["scope"] != " ".join(doc["scopes"]):
            doc["scope"] = " ".join(doc["scopes"])
            tokens.update_one({"_id": doc["_id"]}, {"$set": {"scope": doc["scope"]}})
        return doc, None
    reused = db.tokens.find_one({"old_refresh_hashes": h}, {"_id": 1})
    if reused is not None:
        revoke_family(db, reused["_id"], reason="refresh_reuse")
        return None, "invalid_grant"
    if requested:
        current = db.tokens.find_one({"refresh_hash": h, "client_id": client_id, "revoked": False,
                                      "refresh_expires": {"$gt": now}}, {"_id": 1})
        if current is not None:
            return None, "invalid_scope"
    return None, "invalid_grant"


def find_by_access(db, access_token: str) -> dict | None:
    return db.tokens.find_one({"access_hash": digest(access_token)})


def find_by_refresh(db, refresh_token: str) -> dict | None:
    return db.tokens.find_one({"refresh_hash": digest(refresh_token)})


def revoke_family(db, family: str, reason: str = "revoked") -> None:
    durable(db, "tokens").update_one({"_id": family}, {"$set": {"revoked": True, "revoked_reason": reason,
                                                                "revoked_at": _now()}})


def revoke_code_tokens(db, code_id: str, reason: str = "code_reuse") -> int:
    return durable(db, "tokens").update_many(
        {"code_id": code_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": reason, "revoked_at": _now()}}).modified_count


def revoke_user_client_tokens(db, user_id: str, client_id: str) -> int:
    return durable(db, "tokens").update_many(
        {"user_id": user_id, "client_id": client_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": "consent_removed", "revoked_at": _now()}}).modified_count


def revoke_user_tokens(db, user_id: str) -> int:
    """Revoke every token of a user (call on account deletion, password reset, ...)."""
    return durable(db, "tokens").update_many(
        {"user_id": user_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": "user", "revoked_at": _now()}}).modified_count


def revoke_client_tokens(db, client_id: str) -> int:
    return durable(db, "tokens").update_many(
        {"client_id": client_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": "client_disabled", "revoked_at": _now()}}).modified_count
