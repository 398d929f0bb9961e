"""The user's consent to the biometric notice (in ``face_status``), without Flask."""
from __future__ import annotations

from .face_status import status_collection, utcnow

# Version of the biometric notice shown on the enrollment page; bump it when the text changes
# materially so that stored consents say which text the user agreed to.
NOTICE_VERSION = "2026-11-30"  # replay-check fingerprints (failed sign-ins too) described


def record_consent(db, user_id: str, *, ip: str | None = None, notice_version: str = NOTICE_VERSION) -> dict:
    consent = {"at": utcnow(), "notice_version": notice_version, "ip": ip}
    status_collection(db).update_one({"_id": user_id}, {"$set": {"consent": consent}}, upsert=True)
    return consent


def has_consent(db, user_id: str) -> bool:
    doc = db.face_status.find_one({"_id": user_id}, {"consent": 1})
    return bool(doc and doc.get("consent") and doc["consent"].get("notice_version") == NOTICE_VERSION)
