"""Red-team findings (fixed): the face that performed the *last* move of a sign-in challenge was never
compared with the enrolled face.

At the finish, identity is judged on the capture's good frames only (``_analyses(captures.embeddings(doc))``,
frames that passed the quality gate), and liveness on all frames. The next-move gate
(``CaptureService._moves_made_by_owner``) checks the turning face only for a move after which another is
still hidden; the last move (the only one of a one-move challenge) is checked by nothing. So the good
frames can come from a photo or a recording of the owner, and the last turn from anybody's live head
filmed out of focus (no good frame, landmarks still found).

Real app, real MongoDB server, real face engine and landmark model, shared clips: d3 is the owner
(alice), d12 someone else. Every test asserts the safe outcome and failed before the finish checked the face
of the last move's turn (``CaptureService._verify``: the same check as the next-move gate).
"""
from __future__ import annotations

import io

import pytest
from PIL import Image

from faceweb.test_liveness_web import T0, clip_frames, d3_turn_left, enroll_with, held_still  # noqa: F401
from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people, session_auth, out_of_focus  # noqa: F401


def _mirrored(frames: list[bytes]) -> list[bytes]:
    """The same live head turning the other way (a left turn seen in a mirror is a right turn)."""
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.open(io.BytesIO(f)).transpose(Image.FLIP_LEFT_RIGHT).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _sign_in_capture(b: Browser, frames: list[bytes]):
    """Start a sign-in capture, send ``frames`` at 7.5 fps with their capture times until done, finish."""
    cap = b.start("verify").get_json()
    answers = []
    for k, image in enumerate(frames):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + 1000.0 * k / 7.5)})
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
    return answers, b.finish(cap)


def test_one_move_challenge_someone_elses_turn_and_a_photo_of_the_owner_do_not_give_face(
        make_app, new_user, faces_dir, d3_turn_left):
    # One-move challenges: IDP_LIVENESS_MOVES=1, or a pool of single moves (pinned here to turn_left).
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left")
    enroll_with(app, new_user, d3_turn_left)
    uid = get_db(app).users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")  # the attacker knows alice's password
    impostor = out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0))  # d12 turns left, no good frame
    photo = held_still(Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 0.0, 1.0)[3])), count=12, shift=True)
    answers, fin = _sign_in_capture(b, impostor + photo)
    assert not any(a["ok"] for a in answers[:len(impostor)])  # identity never saw the face that turned
    assert "face" not in session_auth(b)["amr"], fin.get_json()
    assert get_db(app).audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "match"}) == 0


def test_two_move_challenge_a_recording_of_the_first_move_and_someone_elses_last_move_do_not_give_face(
        make_app, new_user, faces_dir, d3_turn_left):
    # Default length (IDP_LIVENESS_MOVES=2), pinned here to turn_left+turn_right.
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left+turn_right")
    b = Browser(app)
    b.login("alice")  # the attacker knows alice's password
    # a recording of alice that the server never saw, turning left (the first move: the gate opens)
    recording = clip_frames(faces_dir, "d3", 3.0, 2.5)
    # then the attacker's own live head, out of focus, turning right (the second, last move)
    impostor = _mirrored(out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0)))
    answers, fin = _sign_in_capture(b, recording + impostor)
    second = [k for k, a in enumerate(answers) if a["liveness"]["moves"] == ["turn_left", "turn_right"]]
    assert second and second[0] < len(recording)  # the owner's recording opened the gate to the second move
    assert not any(a["ok"] for a in answers[len(recording):])  # the last turn never reached identity
    assert "face" not in session_auth(b)["amr"], fin.get_json()


TWO_TURNS = tuple(f"{a}+{b}" for a in ("turn_left", "turn_right") for b in ("turn_left", "turn_right"))


# turn_left+turn_left is not among them: spliced after alice's left turn, d12's clip is never read as back at
# the centre (the reference pose is alice's first frame), so its second left turn is not seen at all. A
# quirk of these two clips (a live attacker turns back first), not a defence; not tuned around here.
@pytest.mark.parametrize("drawn", ["turn_left+turn_right", "turn_right+turn_left", "turn_right+turn_right"])
def test_drawn_challenge_one_look_then_a_recording_of_the_owner_and_the_attackers_own_last_turn_do_not_give_face(
        make_app, new_user, faces_dir, d3_turn_left, drawn):
    # a pool of two turns drawn at random: the clips turn and never tilt, so the default draw (a turn and a
    # tilt) has no such test here; the gate after the first move is the same code for either kind of move
    app = make_app(liveness_enabled=True, liveness_challenges=",".join(TWO_TURNS))
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    # three of the four sequences this pool draws (stored as the pending challenge, as the first start does)
    uid = get_db(app).users.find_one({"username": "alice"})["_id"]
    get_db(app).face_status.update_one({"_id": uid}, {"$set": {"pending_challenge": drawn}}, upsert=True)
    b = Browser(app)
    b.login("alice")  # the attacker knows alice's password
    # 1. one look (a counted attempt): a photo of alice shows the first move, which stays until alice matches
    photo = held_still(Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 0.0, 1.0)[3])), count=1, shift=True)
    cap = b.start("verify").get_json()
    r = b.api(cap["frames_url"], data=photo[0], content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    first = r.get_json()["liveness"]["moves"][0]
    assert first == drawn.split("+")[0]
    assert b.finish(cap).get_json()["ok"] is False
    # 2. a recording of alice the server never saw, turning left (mirrored when the first move is right)
    recording = clip_frames(faces_dir, "d3", 3.0, 2.5)
    recording = recording if first == "turn_left" else _mirrored(recording)
    cap = b.start("verify").get_json()
    answers, k = [], 0

    def send(image):
        nonlocal k
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + 1000.0 * k / 7.5)})
        k += 1
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        return answers[-1]

    for image in recording:
        send(image)
    moves = answers[-1]["liveness"]["moves"]
    assert len(moves) == 2, moves  # alice's recorded turn opened the gate: the second move is shown
    # 3. the attacker's own head (d12, out of focus) performs the second move
    own = out_of_focus(clip_frames(faces_dir, "d12", 0.4, 2.0))
    for image in own if moves[1] == "turn_left" else _mirrored(own):
        if send(image)["done"]:
            break
    fin = b.finish(cap)
    assert "face" not in session_auth(b)["amr"], fin.get_json()
