"""Red-team finding (fixed): the identity of a move was judged on the second up to the frame that completed it,
while the move's evidence was read from more frames than that - so someone else's face could supply the angle in
between that two still pictures of the owner lack.

A move counts only once a frame between the facing pose and the move reads an angle in between
(``LivenessSettings.transit_band``): two pictures of the owner, facing and turned, read only about 0 and about
the peak. But the angles are median-filtered over three frames, and the face of a move was judged only from
``GATE_SPAN_MS`` before the frame that completed it up to that frame. So:

* *on the way back*: the turned picture, the facing picture once, then one frame of the attacker's own head a
  little turned. The facing picture's filtered angle is the median of its neighbours (peak, 0, the attacker's
  8 degrees): it reads in between and completes the move, and the attacker's frame after it, whose angle it
  borrowed, was never judged;
* *on the way out*: the attacker's own head a little turned for a few frames, nothing for 0.9 s, then the
  facing picture once and the turned one. The attacker's frames are the frames in between, and they lie more
  than a second before the turned picture's first frame;
* *the peak after*: the turned picture, then someone else's face turned further. The band is a share of the
  move's peak, so the turned picture reads inside it and completes the move; the face that set the peak came
  after that frame (a first version of the fix, judging up to the frame after the completing one, let this
  through).

Each way the move was performed by two still pictures of the owner and one glimpse of anyone's face, and the
finish gave ``amr ["pwd","face"]`` (the second move of a two-move challenge was shown the same way). Now every
frame the move's evidence was read from - from the facing frame it left to the one it came back to (its peak,
which scales the band, included), with the median filter's neighbours (``move<k>_from_ms`` .. ``move<k>_until_ms``,
``idp.faceweb.liveness.move_spans``) - must match the enrolled face on its own.

Real app, real MongoDB server, real face engine and landmark model. The owner (alice) is the shared clip d3,
enrolled live; her pictures are two single frames of d3 from other moments (2.13 s facing the camera, 5.73 s
turned left by about 15 degrees), re-encoded for every frame; the attacker is d12 (his frame at 2.0 s, turned
about 9 degrees, in focus: a good frame); the face turned further is a colour LFW photo of someone else
(David_Nalbandian_0001), placed where alice's turned face is.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from faceweb.test_liveness_web import T0, clip_frames, d3_turn_left, enroll_with, live_app  # noqa: F401
from idp import get_db

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from liveness_bench.render import held_at_an_angle  # noqa: E402

from ._face import (  # noqa: F401
    Browser, app, cheap_password_hashing, engine, make_app, move_due, new_user, people, send_frames, session_auth,
    still_frame, two_move_sign_in,
)


def _mirror(image: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(image)).transpose(Image.FLIP_LEFT_RIGHT).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _aligned(engine, image: bytes, like: bytes) -> bytes:
    """``image`` moved and scaled so that its face box has the centre and width of ``like``'s (in its frame)."""
    a, b = engine.analyze(image, embed="never").box, engine.analyze(like, embed="never").box
    s = b[2] / a[2]
    img = Image.open(io.BytesIO(image)).convert("RGB")
    img = img.resize((round(img.width * s), round(img.height * s)))
    canvas = Image.new("RGB", Image.open(io.BytesIO(like)).size, (120, 120, 120))
    canvas.paste(img, (round(b[0] + b[2] / 2 - (a[0] + a[2] / 2) * s), round(b[1] + b[3] / 2 - (a[1] + a[3] / 2) * s)))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pictures(faces_dir, engine) -> dict:
    turned = clip_frames(faces_dir, "d3", 5.73, 0.1)[0]
    stranger = faces_dir / "lfw_color65_240px" / "David_Nalbandian" / "David_Nalbandian_0001.jpg"
    return {"facing": clip_frames(faces_dir, "d3", 2.13, 0.1)[0],  # alice's photos
            "turned": turned,
            "mine": clip_frames(faces_dir, "d12", 2.0, 0.1)[0],  # the attacker's own head, a little turned
            # someone else turned further (about 28 degrees from alice's facing photo), where alice's turned one is
            "further": _aligned(engine, stranger.read_bytes(), turned)}


#: The frames of one move: (picture, pause before it in ms). Way back: turned x4, facing, mine. Way out: mine x3,
#: a 0.9 s pause, facing, turned x4. Peak after: turned x3, then someone else turned further x3 (the peak that
#: scales the band, so that the turned picture reads inside it, after the frame that completed the move).
PLANS = {"way_back": [("turned", 0.0)] * 4 + [("facing", 0.0), ("mine", 0.0)],
         "way_out": [("mine", 0.0)] * 3 + [("facing", 900.0)] + [("turned", 0.0)] * 4,
         "peak_after": [("turned", 0.0)] * 3 + [("further", 0.0)] * 3}


def _perform(b: Browser, cap: dict, pics: dict, plan: list, limit: int = 70) -> list[dict]:
    """What the attacker's page sends: the facing picture until a move is shown (and its cue has passed), then
    the move's ``plan`` (``pics[move]`` gives the pictures of each move shown), then the facing picture again
    until the next move is shown or the server says done."""
    queue, done = [], [0]

    def next_frame(answers, k):
        move = None if queue else move_due(answers, done[0])
        if move is not None:
            steps = list(PLANS[plan]) if isinstance(plan, str) else list(plan)
            queue.extend((pics[move][name], pause) for name, pause in steps)
            done[0] += 1
        picture, pause = queue.pop(0) if queue else (pics["facing"], 0.0)
        return still_frame(picture, k), pause
    return send_frames(b, cap, next_frame, T0, limit)


@pytest.mark.slow
@pytest.mark.parametrize("plan", ["way_back", "way_out", "peak_after"])
def test_someone_elses_glimpse_does_not_complete_a_move_between_two_pictures_of_the_owner(
        live_app, new_user, d3_turn_left, pictures, plan):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)  # the owner, live
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")  # the attacker knows the password
    cap = b.start("verify").get_json()
    pics = {"facing": pictures["facing"], "turn_left": {**pictures}}
    answers = _perform(b, cap, pics, plan)
    assert answers[-1]["liveness"]["moves_done"] == 1  # liveness sees the move performed
    body = b.finish(cap).get_json()
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid}, sort=[("_id", -1)])
    # secure: the face that lent the move its angle in between is judged as the move's own
    assert body["ok"] is False and "face" not in session_auth(b)["amr"], (body, entry and entry.get("details"))
    assert entry["decision"] == "no_match" and entry["details"]["move_face_matched"] is False


@pytest.mark.slow
def test_someone_elses_glimpse_does_not_open_the_next_move(make_app, new_user, d3_turn_left, pictures):
    app, db, b, cap = two_move_sign_in(make_app, new_user, d3_turn_left)
    mirrored = {name: _mirror(p) for name, p in pictures.items()}  # a left turn seen in a mirror is a right turn
    pics = {"facing": pictures["facing"], "turn_left": pictures, "turn_right": mirrored}
    answers = _perform(b, cap, pics, "way_back")
    live = [a["liveness"] for a in answers]
    assert any(lv["moves_done"] == 1 for lv in live)  # the first move was performed (as liveness sees it)
    # the faces that performed it were not all the owner's: the second move stays hidden
    assert all(lv["moves"] == ["turn_left"] for lv in live), [lv["moves"] for lv in live]
    assert not db.capture_sessions.find_one({"_id": cap["capture_id"]}).get("lv_all_shown")
    b.finish(cap)
    assert "face" not in session_auth(b)["amr"]


def _held_at_an_angle(image: bytes, narrowing: float = 0.7) -> bytes:
    """The picture as a print held turned about its vertical axis (``render.held_at_an_angle``), as JPEG."""
    import numpy as np
    buf = io.BytesIO()
    Image.fromarray(held_at_an_angle(np.asarray(Image.open(io.BytesIO(image)).convert("RGB")), narrowing)).save(
        buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="open: the frame in between needs no 3-D evidence of its own, so the facing "
                   "picture warped as a print held at an angle (reading about 7 degrees) is one; the owner's face, "
                   "so judging it changes nothing (docs/liveness.md, 'Moves between two pictures')")
def test_the_facing_picture_held_at_an_angle_is_no_frame_in_between(live_app, new_user, d3_turn_left, pictures):
    """Measured with the fix above: 13 of 13 sign-ins gave ``face`` (three narrowings 0.6-0.8, two facing and two
    turned frames of d3, and a two-move challenge with the mirror images)."""
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    pics = {**pictures, "mine": _held_at_an_angle(pictures["facing"])}  # no one else's face at all
    _perform(b, cap, {"facing": pictures["facing"], "turn_left": pics}, [("mine", 0.0)] * 2 + [("turned", 0.0)] * 4)
    body = b.finish(cap).get_json()
    assert body["ok"] is False and "face" not in session_auth(b)["amr"], body
