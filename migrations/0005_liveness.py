"""Liveness: the replayed-frame store.

``liveness_frames``: one document per frame accepted by a capture session while liveness is on:
``{fingerprint: sha256 hex of the decoded pixels, capture_id, created, expires}`` - a hash, never an
image. The unique index makes "was this exact frame seen before?" one atomic insert; the TTL index
forgets fingerprints after their ``expires`` instant (30 days, idp.faceweb.liveness.REPLAY_TTL_DAYS).
"""
from pymongo import ASCENDING, IndexModel


def up(db):
    if "liveness_frames" not in set(db.list_collection_names()):
        db.create_collection("liveness_frames")
    db.liveness_frames.create_indexes([
        IndexModel([("fingerprint", ASCENDING)], unique=True, name="fingerprint_unique"),
        IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    ])
