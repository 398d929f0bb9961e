"""Remembered consent per user and client: ``consents`` ``{user_id, client_id, scopes: [...], granted_at}``."""
from __future__ import annotations

from datetime import datetime, timezone

from .tokens import end_user_client_grants, live_families


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
    """The applications that can use the account: each consent (newest first), then each client holding a live
    token family for it without one (a client registered to skip the consent page, whose offline access the
    user must be able to end as well), ``consented`` False, with the scopes and date of its latest grant."""
    out = [{**c, "consented": True} for c in db.consents.find({"user_id": user_id}).sort("granted_at", -1)]
    listed = {c["client_id"] for c in out}
    live = live_families({"user_id": user_id}, datetime.now(timezone.utc))
    others: dict[str, dict] = {}
    for t in db.tokens.find(live, {"client_id": 1, "scopes": 1, "issued_at": 1}).sort("issued_at", -1):
        if t.get("client_id") and t["client_id"] not in listed and t["client_id"] not in others:
            others[t["client_id"]] = {"client_id": t["client_id"], "scopes": list(t.get("scopes") or []),
                                      "granted_at": t.get("issued_at"), "consented": False}
    return out + list(others.values())


def revoke(db, user_id: str, client_id: str) -> bool:
    """Forget the consent and end what the client holds for the user (unredeemed codes, token families).
    Whether anything live ended: a consent, or a family neither expired nor revoked (``live_families``, the
    ones ``list_for_user`` lists an application for)."""
    res = db.consents.delete_one({"user_id": user_id, "client_id": client_id})
    ended = end_user_client_grants(db, user_id, client_id)
    return bool(res.deleted_count) or ended > 0
