"""Liveness: the perceptual replay store.

``liveness_face_hashes``: ``{user_id, capture_id, hash: 256-bit face hash (64 hex digits), near, failed?,
created, expires}`` for the frames of a user's accepted captures (and, marked ``failed``, of sign-in
captures not accepted after filming; fields added later, no index change) - hashes of the aligned face
crop, never an image (idp.faceweb.liveness). Looked up by user; the TTL index forgets them after ``expires`` (30 days).
"""
from pymongo import ASCENDING, DESCENDING, IndexModel


def up(db):
    if "liveness_face_hashes" not in set(db.list_collection_names()):
        db.create_collection("liveness_face_hashes")
    db.liveness_face_hashes.create_indexes([
        IndexModel([("user_id", ASCENDING), ("created", DESCENDING)], name="user_created"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
