"""The sign-in challenge is shown only to a capture that commits to it, and reading it is an attempt.

The challenge stays until the user matches, so reading it tells an attacker with one recording of the
owner whether to play it now. That reading must not be free: the moves are shown only in the answer to
a frame with a usable face (never at start, never to a frame without one), and from then on the capture
is an attempt however it ends: finished early, finished with too few frames, or left open.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip.
"""
from __future__ import annotations

import io
import time

from PIL import Image

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    T0, clip_frames, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst,
)
from idp import get_db
from idp.faceweb import liveness

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401

REVEALING = ("challenge", "moves", "instruction")


def _alice(make_app, new_user, d3_turn_left, **kw):
    """alice enrolled with a live left turn; a sign-in app with the default random sequences. (Both apps
    deliver mail the same way: either one's sender may take a queued mail.)"""
    mail = {"smtp_url": kw["smtp_url"]} if "smtp_url" in kw else {}
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left", **mail), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, **kw)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    return b, db, db.users.find_one({"username": "alice"})["_id"]


def _blank(k: int) -> bytes:
    """A frame without a face: a camera still adjusting its exposure (brighter each time)."""
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (20 + 12 * k, 22 + 12 * k, 20 + 12 * k)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _frame(b, cap, image, t):
    return b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                 headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})


def _failures(db, uid) -> int:
    return (db.face_status.find_one({"_id": uid}) or {}).get("failures", 0)


def _pending(db, uid):
    return (db.face_status.find_one({"_id": uid}) or {}).get("pending_challenge")


def test_the_moves_are_not_in_the_start_answer_nor_shown_before_a_face(make_app, new_user, d3_turn_left):
    b, db, uid = _alice(make_app, new_user, d3_turn_left)
    cap = b.start("verify").get_json()
    assert cap["liveness"] is True and cap["moves_needed"] == 2 and cap["window_ms"] and cap["cue_ms"]
    assert not any(cap.get(k) for k in REVEALING), cap
    # frames without a face, however many, are told nothing about the moves
    for k in range(8):
        r = _frame(b, cap, _blank(k), 150 * k)
        live = r.get_json()["liveness"]
        assert r.status_code == 200 and not any(live.get(k) for k in REVEALING) and live["before_cue"], live
        assert live["hint_message"] is None
    # such a capture ends without a decision: not an attempt, and the answer does not name the moves
    fin = b.finish(cap).get_json()
    assert fin["ok"] is False and "failures" not in fin and not fin.get("liveness", {}).get("challenge"), fin
    assert not any(w in fin["message"].lower() for w in ("left", "right", "tilt", " up", "down")), fin
    assert _failures(db, uid) == 0 and not (db.face_status.find_one({"_id": uid}) or {}).get("unsettled")


def test_reading_the_moves_then_finishing_at_once_is_a_counted_attempt(make_app, new_user, d3_turn_left,
                                                                      d3_turn_left_other):
    b, db, uid = _alice(make_app, new_user, d3_turn_left)
    cap = b.start("verify").get_json()
    r = _frame(b, cap, d3_turn_left_other[0], 0)
    live = r.get_json()["liveness"]
    first = _pending(db, uid).split("+")[0]  # (at sign-in the first move; the next once it is done)
    assert r.status_code == 200 and live["challenge"] == first and live["moves"] == [first], live
    assert live["moves_needed"] == 2 and "The next move is shown after it." in live["instruction"]
    fin = b.finish(cap).get_json()
    assert fin["ok"] is False and fin["failures"] == 1, fin
    assert _failures(db, uid) == 1
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "incomplete",
                                         "details.counted": True}) == 1
    # the moves stay the same (reading them again gains nothing) and a second reading costs again
    cap = b.start("verify").get_json()
    assert _frame(b, cap, d3_turn_left_other[1], 0).get_json()["liveness"]["challenge"] == live["challenge"]
    assert b.finish(cap).get_json()["failures"] == 2


def test_a_capture_left_open_once_its_moves_were_shown_is_counted(make_app, new_user, d3_turn_left,
                                                                  d3_turn_left_other):
    """No need to film past the cue: one frame with a face showed the moves; the next start settles the
    capture as abandoned."""
    b, db, uid = _alice(make_app, new_user, d3_turn_left)
    cap = b.start("verify").get_json()
    assert _frame(b, cap, d3_turn_left_other[0], 0).get_json()["liveness"]["challenge"]
    assert db.face_status.find_one({"_id": uid})["unsettled"] == [cap["capture_id"]]
    b.start("verify")
    assert _failures(db, uid) == 1
    assert db.audit_log.count_documents({"event": "face.verify", "user_id": uid, "decision": "abandoned"}) == 1


def test_a_late_face_moves_the_cue_and_the_window_with_it(make_app, new_user, d3_turn_left, d3_turn_left_other):
    """A person whose face is not found at first (camera still adjusting) sees the moves with the first
    face frame: the cue is then that frame's moment (a turn before it is too early) and the filming
    window is longer by as much. (Each frame is sent once it is filmed, as by the page: the moment is the
    frame's time no later than the server received it, test_face_found_late_by_the_claimed_times.py.)"""
    b, db, uid = _alice(make_app, new_user, d3_turn_left)
    cap = b.start("verify").get_json()
    began = time.monotonic()
    for k in range(8):  # about 1 s without a face, then the face
        time.sleep(max(0.0, began + 0.150 * k + 0.03 * bool(k) - time.monotonic()))  # (an upload takes a while)
        image = _blank(k) if k < 7 else d3_turn_left_other[0]
        r = _frame(b, cap, image, 150 * k)
    live = r.get_json()["liveness"]
    assert live["challenge"] and live["cue_ms"] == 1050 > cap["cue_ms"], live
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["lv_cue_t"] == 1050
    # (and longer by how late the answer showing the moves was, if the server fell behind the frames' times)
    assert live["window_ms"] == int(cap["window_ms"] + 1050 - cap["cue_ms"] + doc["lv_cue_late"])


def test_the_owner_hears_of_each_look_at_a_new_challenge(make_app, new_user, d3_turn_left, d3_turn_left_other,
                                                         smtp_server):
    """Each look costs a counted attempt, and the first counted failure since the last success mails the
    owner (a real SMTP server): one look per owner sign-in, so each one is heard of, without a mail per
    failure. The lock is mailed too."""
    import time

    from idp.faceweb import lockout
    b, db, uid = _alice(make_app, new_user, d3_turn_left, smtp_url=smtp_server.url, face_lock_after=3,
                        face_free_failures=3)

    def look(k):
        cap = b.start("verify").get_json()
        assert _frame(b, cap, d3_turn_left_other[k], 0).get_json()["liveness"]["challenge"]
        return b.finish(cap).get_json()

    assert look(0)["failures"] == 1
    # (the enrollment's and the new browser's notices arrive at their own pace: wait for this one by subject)
    mails = smtp_server.wait_matching(lambda m: "face check" in m["Subject"])
    assert [m["Subject"] for m in mails] == ["A face check on your account did not pass"]
    assert mails[0]["To"] == "alice@example.org"
    body = mails[0].get_payload(decode=True).decode()
    assert "password" in body and "reset your password at once" in body
    assert look(1)["failures"] == 2  # the same run of failures: no second mail
    lockout.reset_failures(db, uid)  # (what the owner's next successful sign-in does)
    assert look(2)["failures"] == 1
    look(3)
    assert look(4)["locked"] is True
    smtp_server.wait_matching(lambda m: "face" in m["Subject"].lower() and "set up" not in m["Subject"], 3)
    time.sleep(0.5)  # a fourth, wrongly sent, would have come with these
    subjects = [m["Subject"] for m in smtp_server.messages if "face" in m["Subject"].lower()
                and "set up" not in m["Subject"]]
    assert sorted(subjects) == sorted(["A face check on your account did not pass"] * 2
                                      + ["Face sign-in for your account was locked"]), subjects


def _blurred(frames: list[bytes], quality: int) -> list[bytes]:
    """Frames too blurred for the quality gate (so never usable), whose head still turns for the landmarks."""
    from PIL import ImageFilter
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.open(io.BytesIO(f)).filter(ImageFilter.GaussianBlur(6)).save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def test_a_face_that_fails_the_quality_gate_shows_the_moves_and_commits_the_capture(make_app, new_user,
                                                                                    d3_turn_left, d3_turn_left_other):
    """A face frame too blurred for the quality gate still carries the landmarks the decision reads: had it
    been judged before the moves were shown, its answers would tell which way was right. So the first face
    found, usable or not, shows the first move and makes the capture an attempt."""
    b, db, uid = _alice(make_app, new_user, d3_turn_left, liveness_challenges="turn_left")
    cap = b.start("verify").get_json()
    body = _frame(b, cap, _blurred(d3_turn_left_other, 90)[0], 0).get_json()
    assert body["ok"] is False and "blurry" in body["reasons"], body
    assert body["liveness"]["challenge"] == "turn_left"
    assert db.face_status.find_one({"_id": uid})["unsettled"] == [cap["capture_id"]]
    assert b.finish(cap).get_json()["failures"] == 1


# --------------------------------------------------------------------------- one move at a time

TWO = "turn_left+turn_right"


def _film(b, frames, t0=0.0, db=None):
    """Start a sign-in capture and send ``frames`` at 7.5 fps until done: (start answer, frame answers).
    With ``db``: the capture's random cue is set to 300 ms first (to compare runs like with like)."""
    cap = b.start("verify").get_json()
    if db is not None:
        db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    got = []
    for k, image in enumerate(frames):
        r = _frame(b, cap, image, t0 + 1000.0 * k / 7.5)
        assert r.status_code == 200, r.get_json()
        got.append(r.get_json())
        if got[-1]["done"]:
            break
    return cap, got


def test_the_next_move_is_shown_once_the_owner_performed_the_first(make_app, new_user, faces_dir, d3_turn_left):
    """alice (d3) turns left, then right, as asked: the answers show the left turn first, the right turn
    only after it (once her face was filmed after the turn), and the capture is accepted."""
    b, db, uid = _alice(make_app, new_user, d3_turn_left, liveness_challenges=TWO)
    cap, answers = _film(b, clip_frames(faces_dir, "d3", 4.0, 4.0))
    shown = [tuple(a["liveness"]["moves"]) for a in answers]
    assert shown[0] == ("turn_left",) and shown[-1] == ("turn_left", "turn_right"), shown
    k = shown.index(("turn_left", "turn_right"))
    assert answers[k]["liveness"]["moves_done"] == 1  # shown once the first move was done, not before
    assert all(a["liveness"]["moves_done"] == 0 for a in answers[:k])
    assert "to your left, then to your right" in answers[k]["liveness"]["instruction"]
    fin = b.finish(cap).get_json()
    assert fin["ok"] is True, fin


def _impostor_answers(make_app, db_app_kw, recording):
    app = make_app(liveness_enabled=True, **db_app_kw)
    db = get_db(app)
    # the same recording, in the same state each time: what an earlier run stored is cleared
    for coll in (db.liveness_frames, db.face_status):
        coll.delete_many({})
    db.liveness_face_hashes.delete_many({"failed": True})
    b = Browser(app)
    b.login("alice")
    cap, answers = _film(b, recording, db=db)
    return b, db, cap, answers


def test_another_face_never_sees_the_next_move(make_app, new_user, faces_dir, d3_turn_left):
    """Someone else (d12) performs the first move on alice's account: the second is never shown, and no
    answer depends on it - neither the frame answers nor the finish (the same whether it is left or right;
    d12 turns right after the left turn, so judging the hidden move would tell)."""
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    recording = clip_frames(faces_dir, "d12", 0.4, 4.0)  # left 13 degrees at ~1.2 s, right 16 at ~2.9 s
    runs = {}
    for challenge in (TWO, "turn_left+turn_left"):
        b, db, cap, answers = _impostor_answers(make_app, {"liveness_challenges": challenge}, recording)
        # the window and the frame budget also grow by how late the server's first answer was (its own
        # timing, liveness.shown_late_ms): what they are is checked here, and the runs compared without them
        doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
        assert all(a["liveness"]["window_ms"] == int(liveness.filming_window_ms(doc))
                   and a["liveness"]["max_frames"] == liveness.frame_budget(doc) for a in answers)
        runs[challenge] = [({k: v for k, v in a["liveness"].items() if k not in ("window_ms", "max_frames")},
                            a["message"], a["done"]) for a in answers]
        assert all(a["liveness"]["moves"] == ["turn_left"] for a in answers), [a["liveness"]["moves"] for a in answers]
        assert any(a["liveness"]["moves_done"] == 1 for a in answers)  # the first move was seen
        # the gate said no: counted then, and its answer ended the capture (nothing after it is judged)
        assert answers[-1]["done"] is True and answers[-1]["liveness"]["moves_done"] == 1
        uid = db.users.find_one({"username": "alice"})["_id"]
        assert db.face_status.find_one({"_id": uid})["failures"] == 1
        fin = b.finish(cap).get_json()
        assert fin["ok"] is False and fin["failures"] == 1, fin  # reported, not counted again
        assert fin["reasons"] == ["below_threshold"] and "liveness" not in fin, fin
        assert db.face_status.find_one({"_id": uid})["failures"] == 1
        runs[challenge].append(fin)
    assert runs[TWO] == runs["turn_left+turn_left"]
