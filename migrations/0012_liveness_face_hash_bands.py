"""Liveness: every row of ``liveness_face_hashes`` indexed under the bands its look-ups need.

A frame's look-up (idp.faceweb.liveness.near_copy) now asks by user and band alone - the index's own fields,
which every database serves from the index - and no longer for rows without ``bands`` as well (written before
migration 0010), a condition that made the embedded database scan the whole collection for every sign-in
frame. Such rows get their bands here; rows that take part in no replay check (a sign-in frame not turned, a
held pose of an enrollment) get none, so no look-up reads them (``row_bands``, the rule new rows are stored
with). Idempotent: a row is written only when its bands differ.
"""
from pymongo import UpdateOne


def up(db):
    from idp.faceweb.liveness import row_bands

    coll = db.liveness_face_hashes
    batch = []
    for row in coll.find({}, {"hash": 1, "prev": 1, "turned": 1, "near": 1, "bands": 1}):
        if not isinstance(row.get("hash"), str):
            continue
        bands = row_bands(row)
        if row.get("bands") != bands:
            batch.append(UpdateOne({"_id": row["_id"]}, {"$set": {"bands": bands}}))
        if len(batch) >= 500:
            coll.bulk_write(batch, ordered=False)
            batch = []
    if batch:
        coll.bulk_write(batch, ordered=False)
