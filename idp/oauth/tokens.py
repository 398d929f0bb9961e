"""Authorization codes and tokens in MongoDB (no Flask).

``auth_codes``: ``{_id, code_hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
code_challenge_method, auth_time, amr, acr, created_at, expires, used, reused, family, sid, request_id}``
(``request_id``: the pending authorization request it answered, whose kept answer ends on redemption). Codes are
single use: a token request reads the code (``find_code``), runs every check (client, redirect_uri, PKCE), and
only then redeems it with an atomic compare-and-set ``update_one({_id, used: False}, {$set: {used: True, family}})``
(``consume_code``) that also fixes the id of the token family the redemption will store; a second valid
redemption marks the code ``reused`` and revokes that family — with an upsert, so that when it comes before the
winner has stored its tokens, the winner's insert finds a revoked tombstone under the family id and stores nothing.

``tokens``: one document per grant, the refresh-token *family* (``_id == family``)::

    {_id, family, client_id, user_id, scopes: [granted...], narrowed_scope?: "access scope if narrowed",
     access_hash, access_expires, refresh_hash?, refresh_expires?, old_refresh_hashes: [hash prefixes],
     prev_refresh_hash?, rotation_salt?, code_id, auth_time, amr, acr, issued_at, rotated_at, rotations, revoked,
     expires}

Token values are ``<family>.<256 bits>``: random when a code is redeemed, and at a refresh an HMAC of a random
salt and the presented refresh token under ``IDP_SECRET_KEY`` (``successors``); only their SHA-256 is stored. A
token is found by its family id (the primary key: no extra index to maintain on the hot refresh path) and accepted
only when the SHA-256 of the whole value matches the stored hash (constant-time compare). Rotating a refresh token
swaps the hashes with one compare-and-set update (keeping the full hash of the one it retired,
``prev_refresh_hash``, and the salt); presenting an already rotated refresh token revokes the whole family, except
the one just retired presented again by its client within ``REFRESH_RETRY_S`` of its rotation while its successor is
still unused: that is a retry (a lost response, two parallel requests) and gets the same new pair again
(``rotate_refresh``). ``expires`` (refresh expiry, or access expiry without refresh) feeds the TTL index.

Why not ``find_one_and_update``: on the embedded SecantusDB it scans the collection (cost grows with the
number of stored tokens), while ``update_one`` / ``find_one`` by key are O(1).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from typing import Callable

from pymongo.errors import DuplicateKeyError

from idp import audit
from idp.keyring import secret_keys
from idp.store import durable

from .scopes import OFFLINE_ACCESS, SUPPORTED_SCOPES

OLD_REFRESH_KEPT = 20  # rotated refresh tokens remembered per family (to detect replays)
OLD_PREFIX = 16  # hex chars of their SHA-256 kept (64 bits: plenty to recognise a replay)
# How long the refresh token a rotation retired may be presented again by its client as a retry (the same new pair
# comes back) rather than a replay (the family is revoked); see rotate_refresh
REFRESH_RETRY_S = 10


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_family() -> str:
    return secrets.token_urlsafe(16)


def make_token(family: str) -> str:
    return f"{family}.{new_secret()}"


def successors(key: str, salt: str, refresh_token: str) -> tuple[str, str]:
    """The access and refresh tokens a refresh of ``refresh_token`` issues: HMAC-SHA256 of the rotation's random
    ``salt`` and the token under ``key`` (``IDP_SECRET_KEY``), in the family of ``refresh_token``. The same on every
    instance, so that a retry of the request gets the very pair the first one stored (``rotate_refresh``: the salt
    is stored with the rotation) with no token kept in clear anywhere. Unpredictable without the key, the
    presented token (256 bits) and the salt; only the last rotation's salt is kept, so even with the key an old
    refresh token (from a log) does not lead to the current ones."""
    family = family_of(refresh_token)
    out = []
    for kind in (b"access", b"refresh"):
        mac = hmac.new(key.encode(), b"deepauth-refresh-rotation:" + kind + b":" + salt.encode() + b":"
                       + refresh_token.encode(), hashlib.sha256).digest()
        out.append(f"{family}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}")
    return out[0], out[1]


def family_of(token: str | None) -> str | None:
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    family, sep, rest = token.partition(".")
    return family if sep and family and rest else None


def _same(stored: str | None, token: str) -> bool:
    return bool(stored) and hmac.compare_digest(stored, digest(token))


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt):
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


# --- authorization codes ------------------------------------------------------------

def save_code(db, config, code: str, *, client_id: str, user_id: str, redirect_uri: str, scope: str,
              nonce: str | None, code_challenge: str | None, code_challenge_method: str | None,
              auth_time: int | None, amr: list, acr: str | None, sid: str | None = None,
              request_id: str | None = None) -> dict:
    now = _now()
    doc = {
        "_id": secrets.token_urlsafe(12), "code_hash": digest(code), "client_id": client_id, "user_id": user_id,
        "redirect_uri": redirect_uri, "scope": scope, "nonce": nonce, "code_challenge": code_challenge,
        "code_challenge_method": code_challenge_method, "auth_time": auth_time, "amr": list(amr or []),
        "acr": acr, "created_at": now, "expires": now + timedelta(seconds=config.code_lifetime_s),
        "used": False, "reused": False, "family": None, "sid": sid, "request_id": request_id,
    }
    db.auth_codes.insert_one(doc)
    return doc


def find_code(db, code: str, client_id: str) -> dict | None:
    """The code's document when it was issued to ``client_id`` and is unexpired or already used (a second
    presentation, judged by ``consume_code``); else None. Reads only: a code is consumed by ``consume_code``
    once the whole token request has passed its checks, so a request failing them (wrong PKCE verifier or
    redirect_uri) changes nothing."""
    if not isinstance(code, str) or not code:
        return None
    doc = db.auth_codes.find_one({"code_hash": digest(code)})
    if doc is None or doc["client_id"] != client_id:
        return None
    if not doc["used"] and _aware(doc["expires"]) <= _now():
        return None
    return doc


def consume_code(db, doc: dict, context=None) -> dict | None:
    """Mark the code of ``doc`` (from ``find_code``) used and return it — with ``family``, the id under which
    the tokens issued for it must be stored (``issue``) — or None when it expired or was already used.

    The compare-and-set on ``used`` makes exactly one redemption win under concurrency. Another valid
    redemption of a used code marks it ``reused`` and revokes the tokens issued from it, stored yet or not,
    and is audited (``context``: optional zero-argument callable giving the audit entry's ``ip`` /
    ``user_agent``; the first few of one code per hour are stored, the rest counted: ``audit.record``'s
    ``repeat_key``). Call it only for requests that passed every other check, so that only a holder of
    the PKCE verifier can trigger that revocation."""
    codes = durable(db, "auth_codes")
    family = new_family()
    now = _now()
    if codes.update_one({"_id": doc["_id"], "used": False, "expires": {"$gt": now}},
                        {"$set": {"used": True, "used_at": now, "family": family}}).modified_count == 1:
        return {**doc, "used": True, "family": family}
    if not codes.find_one({"_id": doc["_id"], "used": True}, {"_id": 1}):
        return None  # expired (or purged) meanwhile
    # Redeemed before: flag it, then revoke the family of the first redemption. The family id was set
    # together with ``used``; the upsert leaves a revoked tombstone when the first redemption has not
    # stored its tokens yet, so that its insert fails and nothing usable is ever stored.
    codes.update_one({"_id": doc["_id"]}, {"$set": {"reused": True}})
    first = (codes.find_one({"_id": doc["_id"]}, {"family": 1}) or {}).get("family")
    if first:
        revoke_family(db, first, reason="code_reuse", tombstone=True)
    audit.record(db, audit.CODE_REUSE, user_id=doc.get("user_id"), client_id=doc.get("client_id"),
                 decision="tokens_revoked" if first else "rejected",
                 details={"presented_by": doc.get("client_id"), "code_id": doc["_id"]}, repeat_key=doc["_id"],
                 **(context() if context else {}))
    return None


def redeem_code(db, code: str, client_id: str, context=None) -> dict | None:
    """``find_code`` then ``consume_code``: for callers with no other check to make first."""
    doc = find_code(db, code, client_id)
    return consume_code(db, doc, context) if doc is not None else None


# --- tokens --------------------------------------------------------------------------

class FamilyRevoked(Exception):
    """``issue`` under a family id that was revoked before it could be stored (code reuse race)."""

def issue(db, config, *, family: str, client_id: str, user_id: str, scope: str, access_token: str,
          refresh_token: str | None, auth_time: int | None, amr: list, acr: str | None,
          code_id: str | None = None, sid: str | None = None) -> dict:
    """Store a new token family (``sid``: the sign-in it was issued for, so that its end can end the family
    unless it holds offline access; see ``end_session_grants``)."""
    now = _now()
    access_expires = now + timedelta(seconds=config.access_token_lifetime_s)
    doc = {
        "_id": family, "family": family, "client_id": client_id, "user_id": user_id,
        "scopes": scope.split(), "access_hash": digest(access_token),
        "access_expires": access_expires, "old_refresh_hashes": [], "code_id": code_id,
        "auth_time": auth_time, "amr": list(amr or []), "acr": acr, "issued_at": now, "rotated_at": None,
        "rotations": 0, "revoked": False, "expires": access_expires, "sid": sid,
    }
    if refresh_token:
        doc["refresh_hash"] = digest(refresh_token)
        doc["refresh_expires"] = now + timedelta(seconds=config.refresh_token_lifetime_s)
        doc["expires"] = max(doc["refresh_expires"], access_expires)
    try:
        durable(db, "tokens").insert_one(doc)
    except DuplicateKeyError:
        # Only a revoked tombstone can hold a fresh random family id: the code was redeemed again
        # before these tokens were stored (see redeem_code).
        raise FamilyRevoked(family) from None
    return doc


def rotate_refresh(db, config, refresh_token: str, client_id: str,
                   scope: str | None = None, allowed: Callable[[str], str | None] | None = None,
                   context=None) -> tuple[dict | None, str | None, tuple[str, str] | None]:
    """Swap a valid refresh token for a new access/refresh pair.

    Hot path (no ``scope`` parameter): ONE compare-and-set (``find_one_and_update``, which answers the family's
    ``user_id`` for the grant's account check) keyed by the family id, with the
    current refresh hash, client, expiry, "not revoked" and (with ``allowed``) "granted scopes within the
    client's" in the filter — no read before it. Only when it does not match is the family read to tell a
    replay (an already rotated token: the family is revoked) from a plain invalid token, or a grant wider
    than its client may now hold. A narrower ``scope`` reads the family first to check it against the grant.

    ``allowed`` is the client's ``get_allowed_scope`` (Authlib's ``ClientMixin`` hook, which Authlib's bearer
    token generator applies to every token it issues): what of a scope the client, as registered now, may
    hold. A grant wider than that (an operator narrowed the client's scopes since it was given) is narrowed
    for good at this refresh: its granted ``scopes`` become the allowed part, which the new access token
    carries and the answer names. When the allowed part lacks ``openid`` or ``offline_access`` (OpenID Connect
    Core 11: no refresh token without it) the family is revoked and the refresh refused.

    A retry is not a replay: the refresh token this family's last rotation retired, presented again by the same
    client within ``REFRESH_RETRY_S`` of that rotation, for the same scope, while the pair it gave is still the
    family's current one, gets that same pair again (``_retried``; the new tokens are ``successors`` of the
    presented one and the rotation's stored salt, so they can be derived again) and revokes nothing. Two parallel
    requests, or a client retrying after its connection dropped, keep the session. Any other presentation of a
    rotated refresh token - an older one, after the window, by another client, for another scope, or once the new
    refresh token was itself used - is a replay: the family is revoked (RFC 9700 4.14.2). A thief who presents
    the token within the window gets the same pair as its holder; the first refresh of that pair by either makes
    the other's a replay, which revokes the family, unless the other's comes within the window of that refresh too
    (then both hold the next pair).

    Another scope within the window is a replay too, not merely refused (``invalid_scope`` with the family kept):
    a client retrying after a lost response sends the very request again, so a different one is not a retry, and
    the server cannot tell its sender from a thief holding the retired token. Refused without revoking, it would
    cost a thief nothing: it could present the token again with the holder's scope and get the pair, and the
    holder would never learn of the theft. Revoking ends the grant for both (RFC 9700 4.14.2: the server cannot
    tell which presenter is legitimate); an honest client loses its session only for a request a rotating client
    must not make (two different refreshes of one token).

    A served retry (``REFRESH_RETRY``) and a replay (``REFRESH_REUSE``, ``details.reason``: why it was no retry)
    are audited (``context`` as in ``redeem_code``, called only then; the first few of one family per hour are
    stored, the rest counted); a plain rotation is not.

    Returns ``(doc, None, (access, refresh))`` on success (``doc`` holds at least ``_id``, ``client_id``,
    and ``scope`` when it differs from the grant's as the client knew it), or ``(None, error, None)`` with
    error ``"invalid_grant"`` or ``"invalid_scope"``.
    """
    family = family_of(refresh_token)
    if family is None:
        return None, "invalid_grant", None
    tokens = durable(db, "tokens")
    h = digest(refresh_token)
    now = _now()
    current = {"_id": family, "refresh_hash": h, "client_id": client_id, "revoked": False,
               "refresh_expires": {"$gt": now}}
    salt = secrets.token_urlsafe(16)
    access, refresh = successors(secret_keys(config)[0], salt, refresh_token)
    update = {
        "$set": {"access_hash": digest(access), "refresh_hash": digest(refresh), "rotated_at": now,
                 "prev_refresh_hash": h, "rotation_salt": salt,
                 "access_expires": now + timedelta(seconds=config.access_token_lifetime_s)},
        "$push": {"old_refresh_hashes": {"$each": [h[:OLD_PREFIX]], "$slice": -OLD_REFRESH_KEPT}},
        "$inc": {"rotations": 1},
    }
    if not scope:
        ceiling = (allowed(" ".join(SUPPORTED_SCOPES)) or "").split() if allowed is not None else None
        within = {} if ceiling is None else {"scopes": {"$not": {"$elemMatch": {"$nin": ceiling}}}}
        before = tokens.find_one_and_update({**current, **within}, {**update, "$unset": {"narrowed_scope": ""}},
                                            projection={"user_id": 1})
        if before is not None:
            return ({"_id": family, "client_id": client_id, "user_id": before.get("user_id"), "scope": None}, None,
                    (access, refresh))
    # a narrower scope asked for, a grant wider than the client's scopes, or no match
    doc = tokens.find_one({"_id": family}, {"scopes": 1, "refresh_hash": 1, "user_id": 1})
    if doc is not None and _same(doc.get("refresh_hash"), refresh_token):
        have = list(doc.get("scopes") or [])
        requested = list(dict.fromkeys(scope.split())) if scope else None
        if requested and not set(requested) <= set(have):
            return None, "invalid_scope", None
        kept = (allowed(" ".join(have)) or "").split() if allowed is not None else have
        if not refreshable(" ".join(kept)):
            if tokens.update_one(current, {"$set": {"revoked": True, "revoked_reason": "client_scope_narrowed",
                                                     "revoked_at": now}}).modified_count:
                return None, "invalid_grant", None
        else:
            answer = None
            if kept != have:
                update["$set"]["scopes"] = kept
                answer = " ".join(kept)
            if requested:
                answer = " ".join(s for s in requested if s in kept)
                if not answer:
                    return None, "invalid_scope", None
                update["$set"]["narrowed_scope"] = answer
            else:
                update["$unset"] = {"narrowed_scope": ""}
            if tokens.update_one(current, update).modified_count:
                return ({"_id": family, "client_id": client_id, "user_id": doc.get("user_id"), "scope": answer}, None,
                        (access, refresh))
    # No match: unknown, expired, revoked, another client's, a retry, or a replay of a rotated token.
    doc = tokens.find_one({"_id": family}, {"old_refresh_hashes": 1, "client_id": 1, "user_id": 1, "scopes": 1,
                                            "narrowed_scope": 1, "prev_refresh_hash": 1, "rotated_at": 1,
                                            "rotation_salt": 1, "access_hash": 1, "refresh_hash": 1,
                                            "revoked": 1, "refresh_expires": 1})
    if doc is not None and h[:OLD_PREFIX] in (doc.get("old_refresh_hashes") or []):
        retried, why_not = _retried(config, doc, refresh_token, client_id, scope, allowed, now)
        ids = {"user_id": doc.get("user_id"), "client_id": doc.get("client_id"), "repeat_key": family,
               **(context() if context else {})}
        if retried is not None:
            audit.record(db, audit.REFRESH_RETRY, decision="same_pair", details={"presented_by": client_id}, **ids)
            return retried
        revoke_family(db, family, reason="refresh_reuse")
        audit.record(db, audit.REFRESH_REUSE, decision="family_revoked",
                     details={"presented_by": client_id, "reason": why_not}, **ids)
    return None, "invalid_grant", None


def _retried(config, doc: dict, refresh_token: str, client_id: str, scope: str | None,
             allowed: Callable[[str], str | None] | None, now: datetime) -> tuple[tuple | None, str | None]:
    """``(rotate_refresh's answer, None)`` when presenting ``refresh_token`` again is a retry of the rotation that
    retired it (``doc``: the family as stored now), else ``(None, why not)``: it is the token the last rotation
    retired (the full hash compared), that rotation is under ``REFRESH_RETRY_S`` old and its pair is still current
    (not refreshed again: each secret key, current then retired, is tried for ``successors``), the family is live
    and ``client_id``'s, and the request asks for the same scope (none when the rotation asked none) within what
    the client may hold now. Why not: ``another_client``, ``grant_ended``, ``not_last_retired`` (an older token, or
    its successor was refreshed since), ``after_window``, ``another_scope``, ``client_scope_narrowed`` or
    ``secret_key_changed`` (the pair cannot be derived under any secret key this instance knows)."""
    rotated, expires = _aware(doc.get("rotated_at")), _aware(doc.get("refresh_expires"))
    if doc.get("client_id") != client_id:
        return None, "another_client"
    if doc.get("revoked") or expires is None or expires <= now:
        return None, "grant_ended"
    if rotated is None or not _same(doc.get("prev_refresh_hash"), refresh_token):
        return None, "not_last_retired"
    if rotated <= now - timedelta(seconds=REFRESH_RETRY_S):
        return None, "after_window"
    have = list(doc.get("scopes") or [])
    narrowed = doc.get("narrowed_scope")
    if scope and (not narrowed or set(scope.split()) != set(narrowed.split())) or (not scope and narrowed):
        return None, "another_scope"
    if allowed is not None and set((allowed(" ".join(have)) or "").split()) != set(have):
        return None, "client_scope_narrowed"
    for key in secret_keys(config):
        access, refresh = successors(key, str(doc.get("rotation_salt") or ""), refresh_token)
        if _same(doc.get("refresh_hash"), refresh) and _same(doc.get("access_hash"), access):
            return ({"_id": doc["_id"], "client_id": client_id, "user_id": doc.get("user_id"),
                     "scope": narrowed or " ".join(have)}, None,
                    (access, refresh)), None
    return None, "secret_key_changed"


def refreshable(scope: str | None) -> bool:
    """Whether a grant of ``scope`` may be refreshed: it holds ``openid`` and ``offline_access`` (OpenID Connect
    Core 11: no refresh token without it)."""
    return {"openid", OFFLINE_ACCESS} <= set((scope or "").split())


def find_token(db, token: str, kind: str) -> dict | None:
    """The family document when ``token`` is its current access (``kind="access_token"``) or refresh token."""
    family = family_of(token)
    if family is None:
        return None
    doc = db.tokens.find_one({"_id": family})
    field = "access_hash" if kind == "access_token" else "refresh_hash"
    return doc if doc and _same(doc.get(field), token) else None


def find_by_access(db, access_token: str) -> dict | None:
    return find_token(db, access_token, "access_token")


TOMBSTONE_KEPT = timedelta(days=1)  # a revoked family id that was never stored stays taken this long


def revoke_family(db, family: str, reason: str = "revoked", *, tombstone: bool = False) -> None:
    """Revoke a token family. ``tombstone``: when it is not stored (yet), store it revoked, so that a
    later ``issue`` under that id fails (``FamilyRevoked``)."""
    now = _now()
    update = {"$set": {"revoked": True, "revoked_reason": reason, "revoked_at": now}}
    if tombstone:
        update["$setOnInsert"] = {"family": family, "expires": now + TOMBSTONE_KEPT}
    durable(db, "tokens").update_one({"_id": family}, update, upsert=tombstone)


def _end_codes(db, query: dict, reason: str, keep=lambda code: False) -> None:
    """End the codes matching ``query`` (call it before revoking the stored token families that match it):
    delete those not redeemed yet, and make sure the family of each one redeemed (kept in ``auth_codes``
    until the code expires) cannot be stored later unless ``keep(code)``.

    This closes the race with a redemption in flight: ``consume_code`` marks the code used, then ``issue``
    stores its tokens. A redemption that comes after the delete finds no code. For one that consumed the code
    before it, a revoked tombstone is stored under its family id when its tokens are not stored yet, so that
    ``issue`` raises ``FamilyRevoked``; when they are, the caller's revocation of the stored families that
    follows ends them. Whichever runs first, no usable token outlives the end."""
    codes = durable(db, "auth_codes")
    codes.delete_many({**query, "used": False})
    now = _now()
    for code in codes.find({**query, "used": True, "family": {"$ne": None}}, {"family": 1, "scope": 1}):
        if not keep(code):
            durable(db, "tokens").update_one(
                {"_id": code["family"]},
                {"$setOnInsert": {"family": code["family"], "revoked": True, "revoked_reason": reason,
                                  "revoked_at": now, "expires": now + TOMBSTONE_KEPT}}, upsert=True)


def live_families(query: dict, now: datetime) -> dict:
    """The token families matching ``query`` that are usable at ``now``: not revoked, and an access or refresh
    token not expired yet."""
    return {**query, "revoked": False,
            "$or": [{"refresh_expires": {"$gt": now}}, {"access_expires": {"$gt": now}}]}


def end_user_client_grants(db, user_id: str, client_id: str) -> int:
    """Everything one app holds for a user ends (its consent removed): its codes not yet redeemed are deleted
    and its token families revoked, including one being issued at this moment (``_end_codes``). Returns the
    number of live families revoked (``live_families``): the expired ones are revoked too (another instance's
    clock may not have reached their expiry yet) but not counted."""
    query = {"user_id": user_id, "client_id": client_id}
    _end_codes(db, query, "consent_removed")
    now, tokens = _now(), durable(db, "tokens")
    end = {"$set": {"revoked": True, "revoked_reason": "consent_removed", "revoked_at": now}}
    live = tokens.update_many(live_families(query, now), end).modified_count
    tokens.update_many({**query, "revoked": False}, end)
    return live


def revoke_user_tokens(db, user_id: str) -> int:
    """Revoke every token of a user (password change, account lock, ...)."""
    return durable(db, "tokens").update_many(
        {"user_id": user_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": "user", "revoked_at": _now()}}).modified_count


def end_user_grants(db, user_id: str) -> int:
    """Everything apps hold for a user ends (password change, "sign out everywhere"): every token family is
    revoked, including one being issued at this moment, and codes not yet redeemed are deleted
    (``_end_codes``). Returns the number of token families revoked."""
    _end_codes(db, {"user_id": user_id}, "user")
    return revoke_user_tokens(db, user_id)


def end_session_grants(db, user_id: str, sid: str | None) -> int:
    """A sign-in (IdP session ``sid``) ended: its codes not yet redeemed are deleted, so no relying party gets a
    session for it after being told it ended (back-channel logout), and the token families issued for it are
    revoked unless they were granted ``offline_access`` (access while the user is not signed in: OpenID Connect
    Core 11; those stay until they expire, are revoked or the user removes the app). A family being issued
    for the sign-in at this moment ends too (``_end_codes``). Returns the number of token families revoked."""
    if not sid:
        return 0
    _end_codes(db, {"user_id": user_id, "sid": sid}, "signed_out",
               keep=lambda code: OFFLINE_ACCESS in str(code.get("scope") or "").split())
    return durable(db, "tokens").update_many(
        {"user_id": user_id, "sid": sid, "revoked": False, "scopes": {"$ne": OFFLINE_ACCESS}},
        {"$set": {"revoked": True, "revoked_reason": "signed_out", "revoked_at": _now()}}).modified_count


def end_client_grants(db, client_id: str) -> None:
    """Everything a client holds ends, before the client is deleted: its codes and token families are deleted,
    and a family being issued at this moment can never be stored: ``_end_codes`` leaves a revoked tombstone under
    its id (it has no ``client_id``, so it stays until it expires)."""
    _end_codes(db, {"client_id": client_id}, "client_deleted")
    durable(db, "tokens").delete_many({"client_id": client_id})
    durable(db, "auth_codes").delete_many({"client_id": client_id})


def revoke_client_tokens(db, client_id: str) -> int:
    """Everything a client holds ends (the client disabled): its codes not yet redeemed are deleted and its token
    families revoked, including one being issued at this moment (``_end_codes``), which would otherwise come alive
    when the client is enabled again. Returns the number of token families revoked."""
    _end_codes(db, {"client_id": client_id}, "client_disabled")
    return durable(db, "tokens").update_many(
        {"client_id": client_id, "revoked": False},
        {"$set": {"revoked": True, "revoked_reason": "client_disabled", "revoked_at": _now()}}).modified_count
