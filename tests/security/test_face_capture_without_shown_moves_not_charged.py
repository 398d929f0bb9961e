"""A sign-in capture is counted only once the person was shown what to do.

A person in a dim room (face found, too dark to pass the quality gate) who moves their head while fixing
the light must not be charged for failing an instruction that never appeared. The moves are shown from
the first frame with a face found, usable or not, so this person sees the instruction at once; and a
capture whose frames never show a face is never counted.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401
from .test_face_challenge_unrevealed_answers import _dark, _probe, _user


def test_a_dark_face_is_shown_the_moves_at_once_and_a_faceless_capture_is_never_counted(make_app, new_user,
                                                                                         d3_turn_left,
                                                                                         d3_turn_left_other):
    b, db, uid = _user(make_app, new_user, d3_turn_left, "alice")
    cap, answers = _probe(b, _dark(d3_turn_left_other))  # the page stops when an answer says done
    assert answers[0]["ok"] is False, answers[0]  # too dark for the gate ...
    assert answers[0]["liveness"]["challenge"]  # ... yet the instruction is shown with the first frame
    b.finish(cap)
    # frames with no face at all: nothing shown, nothing counted
    before = (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0)
    import io

    from PIL import Image
    blank = []
    for k in range(6):
        buf = io.BytesIO()
        Image.new("RGB", (640, 480), (30 + 20 * k, 30, 30)).save(buf, "JPEG")
        blank.append(buf.getvalue())
    cap, answers = _probe(b, blank)
    assert not any(a["liveness"]["challenge"] for a in answers)
    fin = b.finish(cap).get_json()
    assert "failures" not in fin and (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0) == before
