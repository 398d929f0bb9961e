"""Single-use recovery codes (collection ``recovery_codes``: ``{_id, user_id, code_hash, created_at,
used_at}``), without Flask. Only an HMAC-SHA256 of each code is stored, keyed by the server's secret and
bound to the user."""
from __future__ import annotations

import hashlib
import hmac
import secrets

from idp.store import durable

from .face_status import utcnow

RECOVERY_CODE_COUNT = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def normalise_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _code_hash(key: str, user_id: str, code: str) -> str:
    mac = hmac.new(hashlib.sha256(b"deepauth-recovery-code:" + key.encode()).digest(),
                   f"{user_id}:{normalise_code(code)}".encode(), hashlib.sha256)
    return mac.hexdigest()


def issue_recovery_codes(db, user_id: str, key: str, count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Replace the user's recovery codes with ``count`` new single-use ones; returns them (shown once)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        codes.append(raw[:5] + "-" + raw[5:])
    coll = durable(db, "recovery_codes")
    coll.delete_many({"user_id": user_id})
    now = utcnow()
    coll.insert_many([{"_id": secrets.token_urlsafe(12), "user_id": user_id, "code_hash": _code_hash(key, user_id, c),
                       "created_at": now, "used_at": None} for c in codes])
    return codes


def use_recovery_code(db, user_id: str, key: str, code: str) -> bool:
    """Consume one unused code of ``user_id``; True when it was valid."""
    if not normalise_code(code):
        return False
    doc = durable(db, "recovery_codes").find_one_and_update(
        {"user_id": user_id, "code_hash": _code_hash(key, user_id, code), "used_at": None},
        {"$set": {"used_at": utcnow()}})
    return doc is not None


def remaining_recovery_codes(db, user_id: str) -> int:
    return db.recovery_codes.count_documents({"user_id": user_id, "used_at": None})
