"""Liveness: every frame fingerprint of the replay store (``liveness_frames``) names its user.

A fingerprint is derived from a person's face pictures, so it is face data: it now goes with the user's face data
(``idp.faceweb.erasure.delete_face_data``) and account (the account deletion erases every collection's rows of
the user), which look it up by ``user_id`` (the index made here). Rows written before name only their capture:
their user is taken from that capture (``capture_sessions``) or from the face hashes of the same capture
(``liveness_face_hashes``). A row whose capture is known to neither keeps no user: it is a sha256 of pixels (no
picture can be recovered from it) that the TTL index removes within 30 days of its writing, and until then it
still refuses an exact replay of its frame. Idempotent: only rows without ``user_id`` are read.
"""
from pymongo import ASCENDING, IndexModel, UpdateMany


def _owners(db, capture_ids: list) -> dict:
    owners = {}
    for coll in (db.capture_sessions, db.liveness_face_hashes):
        missing = [c for c in capture_ids if c not in owners]
        if not missing:
            break
        key = "_id" if coll.name == "capture_sessions" else "capture_id"
        for doc in coll.find({key: {"$in": missing}, "user_id": {"$type": "string"}}, {key: 1, "user_id": 1}):
            owners.setdefault(doc[key], doc["user_id"])
    return owners


def _unowned_captures(db):
    """The capture ids of rows without a user, each once (in order through the index: a repeat follows its first),
    without ``distinct``, whose one answer 30 days of captures may not fit in."""
    previous = None
    for row in db.liveness_frames.find({"user_id": None}, {"capture_id": 1, "_id": 0}).sort("capture_id", 1):
        capture = row.get("capture_id")
        if isinstance(capture, str) and capture != previous:
            previous = capture
            yield capture


def up(db):
    # (user, capture): the erasures ask by user, or by user and capture; the back-fill by "no user" and capture
    db.liveness_frames.create_indexes([IndexModel([("user_id", ASCENDING), ("capture_id", ASCENDING)],
                                                  name="user_capture")])
    batch = []
    for capture in _unowned_captures(db):
        batch.append(capture)
        if len(batch) == 500:
            _backfill(db, batch)
            batch = []
    if batch:
        _backfill(db, batch)


def _backfill(db, capture_ids: list) -> None:
    writes = [UpdateMany({"user_id": None, "capture_id": c}, {"$set": {"user_id": u}})
              for c, u in _owners(db, capture_ids).items()]
    if writes:
        db.liveness_frames.bulk_write(writes, ordered=False)
