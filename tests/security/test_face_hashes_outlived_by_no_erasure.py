"""A sign-in frame analysed while the account or its face data is deleted leaves no face hash behind. A frame's
checks (account usable, capture open) run when it arrives; the face engine then works on it for a fraction of a
second, and its face hash (a perceptual hash of the aligned face crop, kept 30 days for the replay checks) is
stored after that. Before, a deletion that ran meanwhile had passed the stored face hashes already, and the frame
stored one after it: biometric-derived data of a deleted account, or of an owner who had just deleted their face
data, kept for 30 days. Real app, real database, real face engine and clip; the deletion is run, for real, between
the frame's analysis and the storing of its hash."""
from __future__ import annotations

import pytest
from faceweb.test_liveness_web import T0, d3_turn_left  # noqa: F401  (fixture)

from ._face import (  # noqa: F401  (fixtures)
    app, cheap_password_hashing, delete_account, delete_face_data, deleted_at, engine, make_app, new_user,
    owner_signing_in,
)


@pytest.mark.parametrize("deletion", [delete_account, delete_face_data])
def test_a_deletion_during_a_sign_in_frame_leaves_no_face_hash(make_app, new_user, faces_dir, d3_turn_left,
                                                             monkeypatch, deletion):
    from idp.faceweb import liveness as web
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    uid = db.users.find_one({"username": "alice"})["_id"]
    ran = deleted_at(monkeypatch, web, "remember_frame_hash", deletion, db)
    r = b.api(cap["frames_url"], data=frames[0], content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    assert ran == [uid], r.get_json()
    assert r.status_code < 500, r.get_json()
    assert db.liveness_face_hashes.count_documents({"user_id": uid}) == 0
    assert db.liveness_frames.count_documents({"capture_id": cap["capture_id"]}) == 0  # nor the frame's digest
