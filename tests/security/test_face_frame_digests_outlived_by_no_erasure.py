"""The replay store's frame fingerprints (``liveness_frames``: the sha256 of each frame a capture took, kept 30
days) are derived from a person's face pictures, so they go with the face data and the account. Before, a row
named only its capture: deleting the face data or the account left every fingerprint of the user's captures for
30 days; a deletion that ran while a frame was analysed left that frame's; and a frame the capture refused (out
of order) left its fingerprint too (a deletion while a frame is analysed: test_face_hashes_outlived_by_no_erasure.py).
Real app, real database server, real face engine on a shared clip."""
from __future__ import annotations

import pytest
from faceweb.test_liveness_web import T0, d3_turn_left, d3_turn_left_other, enroll_with, live_app  # noqa: F401

from idp import get_db

from ._face import (  # noqa: F401  (fixtures)
    Browser, app, cheap_password_hashing, delete_account, delete_face_data, engine, make_app, new_user,
)


def _digests_of(db, capture_ids) -> int:
    return db.liveness_frames.count_documents({"capture_id": {"$in": list(capture_ids)}})


@pytest.mark.parametrize("deletion", [delete_account, delete_face_data])
def test_deleting_the_face_data_or_the_account_erases_the_frame_digests(live_app, new_user, d3_turn_left,
                                                                        deletion):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    captures = {c["_id"] for c in db.capture_sessions.find({"user_id": uid}, {"_id": 1})}
    assert captures and _digests_of(db, captures) >= 4
    assert db.liveness_frames.count_documents({"user_id": uid}) == _digests_of(db, captures)
    deletion(db, uid)
    assert _digests_of(db, captures) == 0


def test_a_frame_the_capture_refuses_leaves_no_frame_digest(live_app, new_user, d3_turn_left, d3_turn_left_other):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()

    def send(i, t):
        return b.api(cap["frames_url"], data=d3_turn_left_other[i], content_type="image/jpeg",
                     headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})
    assert send(0, 0).status_code == 200 and _digests_of(db, [cap["capture_id"]]) == 1
    r = send(1, -1400)  # stamped before the first frame: refused
    assert r.status_code == 400 and r.get_json()["error"] == "frame_out_of_order"
    assert _digests_of(db, [cap["capture_id"]]) == 1
    assert send(1, 150).status_code == 200  # the same frame, in order now: taken (it was no replay)
    assert _digests_of(db, [cap["capture_id"]]) == 2


def test_migration_0014_names_the_user_of_earlier_digests(make_app, new_user):
    from datetime import datetime, timedelta, timezone

    from idp.store.migrate import MIGRATIONS_DIR, load
    db = get_db(make_app())
    uid = new_user("alice")["_id"]
    now = datetime.now(timezone.utc)
    later = now + timedelta(days=30)
    db.capture_sessions.insert_one({"_id": "cap-open", "user_id": uid, "expires": later})
    db.liveness_face_hashes.insert_one({"user_id": uid, "capture_id": "cap-gone", "hash": "0" * 16, "created": now,
                                        "expires": later})
    for fp, capture in (("a" * 64, "cap-open"), ("b" * 64, "cap-gone"), ("c" * 64, "cap-unknown")):
        db.liveness_frames.insert_one({"fingerprint": fp, "capture_id": capture, "created": now, "expires": later})
    migration = load(MIGRATIONS_DIR / "0014_liveness_frames_user.py")
    migration.up(db)
    migration.up(db)  # idempotent
    owners = {d["capture_id"]: d.get("user_id") for d in db.liveness_frames.find({})}
    assert owners == {"cap-open": uid, "cap-gone": uid, "cap-unknown": None}
    assert any(spec["key"] == [("user_id", 1), ("capture_id", 1)]
               for spec in db.liveness_frames.index_information().values())
