"""Liveness: lookups of the perceptual replay store now that every sign-in frame is stored as it arrives.

``liveness_face_hashes`` rows gained ``turned`` (a sign-in frame turned away from its capture's first
frame; only those take part), ``failed`` (not, or not yet, accepted) and ``bands`` (the hash in 17 bands:
a row within 16 bits of a new frame's hash shares one, idp.faceweb.liveness.hash_bands). A frame is
looked up by user and band, never against its own capture (``capture_id``); a match turns a capture's
rows accepted; accepted ones are trimmed by age. Indexes for those reads and that update.
"""
from pymongo import ASCENDING, DESCENDING, IndexModel


def up(db):
    db.liveness_face_hashes.create_indexes([
        IndexModel([("user_id", ASCENDING), ("bands", ASCENDING)], name="user_bands"),
        IndexModel([("user_id", ASCENDING), ("failed", ASCENDING), ("created", DESCENDING)], name="user_kind_created"),
        IndexModel([("user_id", ASCENDING), ("capture_id", ASCENDING)], name="user_capture"),
    ])
