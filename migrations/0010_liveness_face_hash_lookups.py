"""Liveness: lookups of the perceptual replay store now that every sign-in frame is stored as it arrives.

``liveness_face_hashes`` rows gained ``turned`` (a sign-in frame turned away from its capture's first
frame; only those take part) and ``failed`` (not, or not yet, accepted). A frame is compared with the
user's accepted rows and, apart, with their newest turned failed rows, never with its own capture's
(``capture_id``); a match turns a capture's rows accepted. Indexes for those reads and that update.
"""
from pymongo import ASCENDING, DESCENDING, IndexModel


def up(db):
    db.liveness_face_hashes.create_indexes([
        IndexModel([("user_id", ASCENDING), ("failed", ASCENDING), ("turned", ASCENDING), ("created", DESCENDING)],
                   name="user_kind_created"),
        IndexModel([("user_id", ASCENDING), ("capture_id", ASCENDING)], name="user_capture"),
    ])
