"""A pre-recorded clip gets one judged try per challenge, and one try per recording.

The liveness challenge is a random sequence of head turns; a fixed clip performs one sequence, so it
passes a try only when the draw happens to fit it. Two ways around that bound are closed here:

* restarting (or abandoning, or finishing without a decision) until a draw fits the clip: at sign-in
  the challenge is kept until a capture with it is judged, so every new draw costs a counted attempt;
* replaying the same clip on the next try: the face hashes of a failed capture's turning frames join
  the user's perceptual replay store, so the same recording, re-encoded, is refused as a replay.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io

from PIL import Image

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    FPS, T0, _transformed, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, held_still, live_app,
    send_burst,
)
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, enrolled, make_app, new_user, people  # noqa: F401


def _pending(app, uid):
    return (get_db(app).face_status.find_one({"_id": uid}) or {}).get("pending_challenge")


def test_restarting_a_sign_in_capture_does_not_draw_a_new_challenge(enrolled, make_app, faces_dir):
    user, _ = enrolled
    uid = user["_id"]
    app = make_app(liveness_enabled=True)  # the default: two random turns (4 sequences)
    b = Browser(app)
    b.login("alice")
    first = b.start("verify").get_json()
    assert len(first["moves"]) == 2
    # abandoned captures: six more starts see the same moves (a fresh draw each time would repeat
    # the first one six times with probability 4**-6)
    for _ in range(6):
        cap = b.start("verify").get_json()
        assert cap["challenge"] == first["challenge"] and cap["capture_id"] != first["capture_id"]
    # finished without a decision (no frame): not a counted attempt, and the challenge stays
    fin = b.finish(cap)
    assert fin.get_json()["ok"] is False
    assert (get_db(app).face_status.find_one({"_id": uid}) or {}).get("failures", 0) == 0
    assert b.start("verify").get_json()["challenge"] == first["challenge"]
    assert _pending(app, uid) == first["challenge"]
    # a judged try (a still photo: a counted failure) uses it up; the next capture draws again
    still = Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 1.0, 0.2)[0]))
    cap, _, fin = send_burst(b, "verify", held_still(still, 16, shift=True))
    assert fin.get_json()["ok"] is False and fin.get_json()["liveness"]["passed"] is False
    assert get_db(app).face_status.find_one({"_id": uid})["failures"] == 1
    assert _pending(app, uid) is None
    nxt = b.start("verify").get_json()
    assert _pending(app, uid) == nxt["challenge"]
    # enrollment draws per capture (its failures are not counted): nothing pending is kept for it
    assert all(b.start("enroll").status_code in (201, 403) for _ in range(2))
    assert _pending(app, uid) == nxt["challenge"]


def test_a_recording_that_failed_is_refused_as_a_replay_on_the_next_try(live_app, new_user, d3_turn_left,
                                                                        d3_turn_left_other):
    """alice enrolls with one d3 turn. At sign-in the page asks for a right turn; a recording of her
    turning left (other frames of d3) fails. The same recording re-encoded, on the next try when the
    page happens to ask for a left turn, is refused as a replay instead of passing."""
    enroll_app = live_app("turn_left")
    enroll_with(enroll_app, new_user, d3_turn_left)
    db = get_db(enroll_app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    accepted = db.liveness_face_hashes.count_documents({"user_id": uid})

    wrong = live_app("turn_right")
    b = Browser(wrong)
    b.login("alice")
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    body = fin.get_json()
    assert body["ok"] is False and body["liveness"]["reasons"][0] == "challenge_wrong_direction", body
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    failed = db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True})
    stored = db.liveness_face_hashes.count_documents({"user_id": uid})

    right = live_app("turn_left")
    b = Browser(right)
    b.login("alice")
    copies = _transformed(d3_turn_left_other, "jpeg90")
    cap = b.start("verify").get_json()
    assert cap["challenge"] == "turn_left"
    statuses = []
    for i, image in enumerate(copies):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + i * 1000.0 / FPS)})
        statuses.append(r.status_code)
        if r.status_code != 200 or r.get_json()["done"]:
            break
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    assert db.face_status.find_one({"_id": uid})["failures"] == 2
    # the failed capture's frames were kept, marked as such, beside the accepted ones
    assert failed >= 4 and stored == accepted + failed


def test_failed_captures_never_push_accepted_frames_out_of_the_replay_store(make_app, new_user):
    """The store keeps FACE_HASHES_KEPT hashes of each kind: a flood of failed captures (an attacker
    who has the password) cannot evict the hashes of the owner's accepted captures."""
    from datetime import datetime, timezone

    from idp.faceweb.liveness import FACE_HASHES_KEPT, remember_face_hashes
    app = make_app()
    db = get_db(app)
    uid = new_user("alice")["_id"]
    now = datetime.now(timezone.utc)

    def capture(cid, n, base):
        return {"_id": cid, "frames": [{"fh": f"{base + k:064x}"} for k in range(n)]}
    remember_face_hashes(db, uid, capture("ok", 40, 1 << 200), now)
    for k in range(8):
        remember_face_hashes(db, uid, capture(f"bad{k}", 40, (k + 2) << 200), now, failed=True)
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": {"$ne": True}}) == 40
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True}) == FACE_HASHES_KEPT
