"""Single-use recovery codes (collection ``recovery_codes``: ``{_id, user_id, code_hash, key_id, batch, created_at,
used_at}``), without Flask. Only an HMAC-SHA256 of each code is stored, keyed by the server's secret and
bound to the user.

Unused codes stop working only by their use, an administrator voiding them or the account's deletion: no
enrollment and no deletion of the face data voids them (a face match is not proof enough to take away the
owner's way back), and an enrollment makes a set only when none is left (``capture.CaptureService._enroll``).

Key rotation: codes are always issued under ``IDP_SECRET_KEY`` (``key_id`` names it, not secret); a code
is accepted under that key or any of ``IDP_SECRET_KEYS_RETIRED``. An HMAC cannot be re-keyed without the
code, so a code issued before a rotation works only while its key is kept as retired
(:func:`codes_under_other_keys` counts them)."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from idp.store import durable

from .face_status import utcnow

RECOVERY_CODE_COUNT = 10
COUNTER_PREFIX = "recovery_"  # the ``lockout`` prefix of the recovery-code checks' counters and reservation
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _code_hash(key: str, user_id: str, code: str) -> str:
    mac = hmac.new(hashlib.sha256(b"deepauth-recovery-code:" + key.encode()).digest(),
                   f"{user_id}:{normalise_code(code)}".encode(), hashlib.sha256)
    return mac.hexdigest()


def issue_recovery_codes(db, user_id: str, key: str, count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """``count`` new single-use codes for the user, keyed by ``key`` (the current secret key); returns them
    (shown once). :func:`add_recovery_codes` then :func:`retire_other_codes` (the user's unused codes stay)."""
    codes, batch = add_recovery_codes(db, user_id, key, count)
    retire_other_codes(db, user_id, batch)
    return codes


def add_recovery_codes(db, user_id: str, key: str, count: int = RECOVERY_CODE_COUNT) -> tuple[list[str], str]:
    """Store ``count`` new single-use codes beside the user's others, which keep working until
    :func:`retire_other_codes` (or go with :func:`drop_codes`, when what made them did not stand): the codes and
    their batch id."""
    from idp.keyring import secret_key_id
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        codes.append(raw[:5] + "-" + raw[5:])
    batch, now = secrets.token_urlsafe(12), utcnow()
    durable(db, "recovery_codes").insert_many([
        {"_id": secrets.token_urlsafe(12), "user_id": user_id, "code_hash": _code_hash(key, user_id, c),
         "key_id": secret_key_id(key), "batch": batch, "created_at": now, "used_at": None} for c in codes])
    return codes, batch


def retire_other_codes(db, user_id: str, batch: str) -> int:
    """Delete the user's *used* codes made before ``batch`` or at its millisecond (history the new set makes
    moot); how many went. Unused codes of other batches stay, whoever made them: a set is made only when none is
    left, so an unused code of another batch is one a racing enrollment just showed its user, and voiding it
    would take that user's way back (of two enrollments issuing at once, both sets stay)."""
    coll = durable(db, "recovery_codes")
    mine = coll.find_one({"user_id": user_id, "batch": batch}, {"created_at": 1})
    if mine is None:  # voided (or erased) meanwhile: nothing of this batch to keep
        return 0
    return coll.delete_many({"user_id": user_id, "batch": {"$ne": batch}, "used_at": {"$ne": None},
                             "created_at": {"$lte": mine["created_at"]}}).deleted_count


def drop_codes(db, user_id: str, batch: str) -> int:
    """Delete the codes of ``batch`` alone (the user's others stay); how many went."""
    return durable(db, "recovery_codes").delete_many({"user_id": user_id, "batch": batch}).deleted_count


def use_recovery_code(db, user_id: str, keys, code: str) -> bool:
    """Consume one unused code of ``user_id``; True when it was valid under one of ``keys`` (the current
    secret key and the retired ones; one key alone may be given as a string). One atomic update."""
    if not normalise_code(code):
        return False
    keys = [keys] if isinstance(keys, str) else list(keys)
    doc = durable(db, "recovery_codes").find_one_and_update(
        {"user_id": user_id, "code_hash": {"$in": [_code_hash(k, user_id, code) for k in keys]}, "used_at": None},
        {"$set": {"used_at": utcnow()}})
    return doc is not None


def remaining_recovery_codes(db, user_id: str, keys) -> int:
    """How many of the user's codes still work: unused, and issued under one of ``keys`` (the current secret key
    and the retired ones), or before codes recorded their key. A code whose key is no longer configured is not
    counted: it cannot be used, so an account holding only such codes has none left (and gets a new set)."""
    from idp.keyring import secret_key_id
    keys = [keys] if isinstance(keys, str) else list(keys)
    return db.recovery_codes.count_documents({"user_id": user_id, "used_at": None, "$or": [
        {"key_id": {"$in": [secret_key_id(k) for k in keys]}}, {"key_id": {"$exists": False}}]})


def codes_under_other_keys(db, key: str) -> int:
    """Unused recovery codes not issued under ``key`` (the current secret key), including those from before
    codes recorded their key: they stop working once their key is no longer configured."""
    from idp.keyring import secret_key_id
    return db.recovery_codes.count_documents({"used_at": None, "key_id": {"$ne": secret_key_id(key)}})
