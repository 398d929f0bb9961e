"""Red-team finding (fixed): a mirrored recording of an earlier sign-in was no replay to the replay store.

The store compares the hash of each new frame's landmark-aligned face crop with the user's stored frames.
A recording played mirrored shows the mirror image of every stored crop, whose hash is unrelated to the
stored one; yet a mirrored face matches the template (flip augmentation), and a mirrored left turn is a
right turn. So a recording of an accepted sign-in with a left turn, played mirrored, performed a right
turn and was accepted: ``amr`` face from a replay the store exists to refuse. Now each new frame's crop is
also compared mirrored (``fhm``).

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io

from PIL import Image, ImageOps

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    FPS, T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)
from idp import get_db
from idp.faceweb import liveness as web

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user  # noqa: F401
from .test_face_replay_filmed_again import _filmed_again, _send_replay


def _mirrored(frames: list[bytes]) -> list[bytes]:
    out = []
    for data in frames:
        buf = io.BytesIO()
        ImageOps.mirror(Image.open(io.BytesIO(data)).convert("RGB")).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def test_an_accepted_sign_in_played_mirrored_is_refused_as_a_replay(live_app, new_user, faces_dir,
                                                                   d3_turn_left, d3_turn_left_other):
    """alice enrolls with one d3 turn and signs in with another, a left turn (accepted). The same 2.5 s of
    the recording filmed again half a frame period later and played mirrored (a right turn) is refused as
    a replay at a server whose challenge is a right turn: a counted failure, nothing signed in."""
    enroll_with(live_app("turn_left"), new_user, d3_turn_left_other)
    app = live_app("turn_left")
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")
    _, _, fin = send_burst(b, "verify", d3_turn_left)
    assert fin.get_json()["ok"] is True, fin.get_json()

    half = 0.5 / FPS
    replay = _mirrored(_filmed_again(clip_frames(faces_dir, "d3", 7.2 + half, 2.5)))
    b = Browser(live_app("turn_right"))  # (another instance of the same deployment: its draw is a right turn)
    b.login("alice")
    cap, statuses, r = _send_replay(b, replay)
    if statuses[-1] == 200:  # not refused on the way: what the finish says of it
        fin = b.api(cap["finish_url"], headers={"X-Capture-Nonce": cap["nonce"]})
        doc = db.capture_sessions.find_one({"_id": cap["capture_id"]}) or {}
        raise AssertionError(f"mirrored replay not refused: finish {fin.status_code} {fin.get_json()}, "
                             f"lv_near {doc.get('lv_near')}")
    assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", statuses
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["lv_near"] >= web.FACE_HASH_MIN_FRAMES
