"""Remembered consent per user and client: ``consents`` ``{user_id, client_id, scopes: [...], granted_at}``."""
from __future__ import annotations

from datetime import datetime, timezone

from .tokens import end_user_client_grants


def granted_scopes(db, user_id: str, client_id: str) -> set[str]:
    doc = db.consents.find_one({"user_id": user_id, "client_id": client_id}, {"scopes": 1})
    return set(doc.get("scopes", [])) if doc else set()


def covers(db, user_id: str, client_id: str, scopes) -> bool:
    return set(scopes) <= granted_scopes(db, user_id, client_id)


def grant(db, user_id: str, client_id: str, scopes) -> None:
    db.consents.update_one(
        {"user_id": user_id, "client_id": client_id},
        {"$addToSet": {"scopes": {"$each": list(scopes)}}, "$set": {"granted_at": datetime.now(timezone.utc)}},
        upsert=True)


def list_for_user(db, user_id: str) -> list[dict]:
    return list(db.consents.find({"user_id": user_id}).sort("granted_at", -1))


def revoke(db, user_id: str, client_id: str) -> bool:
    """Forget the consent and end what the client holds for the user (unredeemed codes, token families)."""
    res = db.consents.delete_one({"user_id": user_id, "client_id": client_id})
    end_user_client_grants(db, user_id, client_id)
    return bool(res.deleted_count)
