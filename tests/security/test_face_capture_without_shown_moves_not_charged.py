"""A sign-in capture whose moves were never shown is not a counted attempt, whatever the head did.

Until a frame passes the quality gate the server names no moves (the instruction cannot appear), and the
cue is "not yet": every head movement before it is "too early". A person in a dim room (face found, too
dark to pass the gate) who moves their head while fixing the light has not failed any instruction: the
capture must end as incomplete, not as a counted failure (which also mails the owner "A face check on
your account did not pass" and brings the waiting time and the lock nearer).

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401
from .test_face_challenge_unrevealed_answers import _dark, _probe, _user


def test_head_movement_before_any_usable_face_is_not_a_counted_failure(make_app, new_user, d3_turn_left,
                                                                       d3_turn_left_other):
    b, db, uid = _user(make_app, new_user, d3_turn_left, "alice")
    cap, answers = _probe(b, _dark(d3_turn_left_other))  # the page stops when an answer says done
    shown = any(a["liveness"]["challenge"] for a in answers)
    fin = b.finish(cap).get_json()
    if not shown:  # no instruction could appear: nothing to fail, nothing counted
        assert (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0) == 0, fin
        assert "failures" not in fin and "instruction appeared" not in fin.get("message", ""), fin
