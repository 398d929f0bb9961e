"""Deleting a user's face data (template, captures, recovery codes, status), without Flask."""
from __future__ import annotations

from idp.store import durable

from .reenrollment import VIA_DELETED
from .face_status import aware, status_collection, utcnow


def delete_face_data(db, user_id: str, *, face_proven: bool = True) -> dict:
    """Delete everything biometric about the user: template, capture sessions, the face hashes of the
    replay store, consent and counters, and the recovery codes when the deletion was asked by a sign-in
    that passed the face. Returns how many
    documents went from each collection; ``template`` is 1 only in the call whose atomic delete removed the
    template, so of deletions running at once exactly one reports it (the one that audits and notifies).

    What guards the next enrollment survives, without any biometric data: a running cooling-off period
    and a pending one. When the deletion was asked by a sign-in that did not pass the face (``face_proven``
    false: a recovery code), the next enrollment starts a cooling-off period, so that deleting cannot turn
    a recovery into a "first" enrollment, and the owner's unused recovery codes stay (they are not
    biometric data): whoever holds the password and one stolen code cannot void the owner's other codes."""
    from idp.face.repository import delete_template
    status = db.face_status.find_one({"_id": user_id}, {"cooloff_until": 1, "enroll_cooloff": 1}) or {}
    out = {"template": int(delete_template(db, user_id))}
    out["captures"] = durable(db, "capture_sessions").delete_many({"user_id": user_id}).deleted_count
    out["recovery_codes"] = (durable(db, "recovery_codes").delete_many({"user_id": user_id}).deleted_count
                             if face_proven else 0)
    out["face_hashes"] = durable(db, "liveness_face_hashes").delete_many({"user_id": user_id}).deleted_count
    keep = {}
    if status.get("cooloff_until") and aware(status["cooloff_until"]) > utcnow():
        keep["cooloff_until"] = status["cooloff_until"]
    if status.get("enroll_cooloff"):
        keep["enroll_cooloff"] = status["enroll_cooloff"]
    elif not face_proven:
        keep["enroll_cooloff"] = {"via": VIA_DELETED, "at": utcnow()}
    # One atomic write of the status: a request writing it meanwhile (a sign-in start, a consent) cannot
    # slip between a delete and a re-insert and make the guards above disappear.
    if keep:
        out["status"] = int(status_collection(db).replace_one({"_id": user_id}, {"_id": user_id, **keep},
                                                              upsert=True).matched_count)
    else:
        out["status"] = status_collection(db).delete_one({"_id": user_id}).deleted_count
    return out
