"""A recording of an earlier sign-in, filmed again, is refused as a replay.

A replay is filmed anew: the camera samples the played recording at other moments than the first
capture did, so its frames fall *between* the stored ones. During a turn two frames 150 ms apart are far
apart in face-hash space, and copies of single stored frames caught such a replay only now and then
(the browser test of a rescaled replay passed about half the time). The replay store also compares a
new turned frame with the motion between two consecutive stored turned frames.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io

from PIL import Image

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    FPS, T0, clip_frames, d3_turn_left, d3_turn_left_other, live_app, send_burst,
)
from idp.faceweb import liveness as web

from ._face import (  # noqa: F401
    Browser, app, cheap_password_hashing, engine, enrolled_and_signing_in, make_app, new_user,
)


def _filmed_again(frames: list[bytes]) -> list[bytes]:
    """The frames as a camera sees them on a screen: 90 % of the picture, re-encoded."""
    out = []
    for data in frames:
        img = Image.open(io.BytesIO(data)).convert("RGB")
        small = img.resize((round(img.width * 0.9), round(img.height * 0.9)), Image.BILINEAR)
        canvas = Image.new("RGB", img.size, (16, 16, 16))
        canvas.paste(small, ((img.width - small.width) // 2, (img.height - small.height) // 2))
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def _send_replay(b, replay: list[bytes]):
    """A sign-in capture of ``b`` sent the frames ``replay`` at the page's pace (half a frame period after
    the clip's own times), until an answer is not 200 or says done: the capture, the statuses, the last answer."""
    cap = b.start("verify").get_json()
    statuses, r = [], None
    for i, image in enumerate(replay):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + (i + 0.5) * 1000.0 / FPS)})
        statuses.append(r.status_code)
        if r.status_code != 200 or r.get_json()["done"]:
            break
    return cap, statuses, r


def test_an_accepted_sign_in_filmed_again_between_its_frames_is_refused(live_app, new_user, faces_dir,
                                                                        d3_turn_left, d3_turn_left_other):
    """alice enrolls with one d3 turn and signs in with another (accepted). The same 2.5 s of the
    recording, filmed again half a frame period later (every frame between two stored ones), rescaled
    and re-encoded, is refused as a replay: a counted failure, and nothing is signed in. (Of this
    replay's frames, at most 2 are within 16 bits of a stored frame.)"""
    app, db, uid, b = enrolled_and_signing_in(live_app, new_user, d3_turn_left_other)
    cap, answers, fin = send_burst(b, "verify", d3_turn_left)
    assert fin.get_json()["ok"] is True, fin.get_json()
    rows = list(db.liveness_face_hashes.find({"user_id": uid, "capture_id": cap["capture_id"]}))
    assert sum(1 for r in rows if r.get("prev")) >= 3  # the turn's consecutive turned frames

    half = 0.5 / FPS
    replay = _filmed_again(clip_frames(faces_dir, "d3", 7.2 + half, 2.5))  # (d3_turn_left's span)
    b = Browser(app)
    b.login("alice")
    cap, statuses, r = _send_replay(b, replay)
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid, "decision": "liveness_failed"})
    assert entry is not None and entry["reasons"] == ["replayed_frame"]
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["lv_near"] >= web.FACE_HASH_MIN_FRAMES
