"""Before a sign-in capture's moves are shown, its answers say nothing about the pending challenge.

The moves are shown (and the capture becomes a counted attempt) only with the first frame that passes the
face engine's quality gate. Frames that fail the gate can still carry a face (box, landmarks, dense
landmarks: too dark, too small, a second face): the liveness decision runs on them all the same. Whatever
it measures about the requested moves before they are shown (``moves_done``, the guidance message, the
hints, ``final``/``done``) must not depend on the pending challenge, or a script that never sends a
usable face reads it for free (the capture is never committed, so leaving it open costs nothing).

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io

from PIL import Image, ImageEnhance

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401

FRAME_MS = 1000.0 / 7.5


def _dark(frames: list[bytes], factor: float = 0.3, quality: int = 90) -> list[bytes]:
    """The frames filmed in a dim room: the face is found (box, landmarks) but fails the quality gate
    (too_dark), so no frame is "usable" and the moves are never shown."""
    out = []
    for fr in frames:
        im = ImageEnhance.Brightness(Image.open(io.BytesIO(fr)).convert("RGB")).enhance(factor)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def _user(make_app, new_user, enroll_frames, name):
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, enroll_frames, name=name)
    app = make_app(liveness_enabled=True)
    db = get_db(app)
    b = Browser(app)
    b.login(name)
    return b, db, db.users.find_one({"username": name})["_id"]


def _probe(b, frames):
    cap = b.start("verify").get_json()
    answers = []
    for k, image in enumerate(frames):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + k * FRAME_MS)})
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
    return cap, answers


def _told(answers) -> list:
    """What each frame answer says about the moves (times left out: they depend on the frames only)."""
    keys = ("challenge", "moves", "instruction", "moves_done", "hint", "hint_message", "passed", "final", "done")
    return [(a["message"], a["done"], {k: a["liveness"].get(k) for k in keys}) for a in answers]


def test_dark_frames_of_a_turn_learn_nothing_about_the_pending_challenge(make_app, new_user, d3_turn_left,
                                                                        d3_turn_left_other):
    """Two users whose pending challenges start with different turns send the same dark frames of a left
    turn (a face is found in each, none passes the quality gate). Every answer that does not name the
    moves must be the same for both (a capture that names them is a counted attempt: checked too).
    Fails while ``moves_done`` (and with it the message, ``final``/``done``) follows the hidden challenge."""
    told = {}
    for name, pending, quality in (("alice", "turn_left+look_up", 90), ("bob", "turn_right+look_up", 88)):
        enroll = d3_turn_left if name == "alice" else _dark(d3_turn_left, 1.0, 93)  # new pixels for bob
        b, db, uid = _user(make_app, new_user, enroll, name)
        db.face_status.update_one({"_id": uid}, {"$set": {"pending_challenge": pending}}, upsert=True)
        cap, answers = _probe(b, _dark(d3_turn_left_other, 0.3, quality))
        shown = any(a["liveness"]["challenge"] for a in answers)
        # the look is counted if the moves were named, and free otherwise (the next start charges nothing)
        assert b.start("verify").status_code == 201
        assert (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0) == (1 if shown else 0)
        told[name] = _told([a for a in answers if not a["liveness"]["challenge"]])
    assert told["alice"] == told["bob"], (told["alice"][-1:], told["bob"][-1:])
