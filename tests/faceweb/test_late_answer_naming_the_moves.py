"""A server that answers the frame naming the moves late (a loaded CPU) neither fails the person nor gives a
client anything.

The page shows the instruction when that answer arrives (or at the drawn cue, if later) and films for a
window from its first frame. The server measures, by its own clock, how late it shows the moves
(idp.faceweb.liveness.shown_late_ms): up to SHOWN_LATE_CAP_MS of it lengthens the window, the time limits
and the frame budget and moves the accounted burst time forward by as much (a pause after the moves were
shown still counts); beyond SHOWN_LATE_MAX_MS the moves are withheld and the capture ends as
``server_busy``, which is no attempt. The load is simulated by a stall in the frame's own work before its
answer (the dense landmarks), on the first frame with a face only.

Real app, real MongoDB server, real face engine on frames of a shared clip.
"""
from __future__ import annotations

import io
import time

from PIL import Image

from idp import get_db
from idp.faceweb import liveness

from .conftest import Browser
from .test_liveness_web import (  # noqa: F401  (fixtures)
    T0, d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst, signed_in,
)


def _stall_first_face_frame(monkeypatch, seconds: float) -> list[float]:
    """The first frame with a face takes ``seconds`` longer to analyse (a loaded server); returns the list
    the stalls are recorded in."""
    real, stalls = liveness.dense_fields, []

    def slow(rgb, analysis):
        if not stalls and getattr(analysis, "box", None):
            stalls.append(seconds)
            time.sleep(seconds)
        return real(rgb, analysis)

    monkeypatch.setattr(liveness, "dense_fields", slow)
    return stalls


def _frame(b, cap, image: bytes, t_ms: float):
    r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t_ms)})
    return r.status_code, r.get_json()


def test_moves_the_server_would_show_too_late_are_withheld_and_no_attempt_is_counted(
        live_app, new_user, d3_turn_left, d3_turn_left_other, monkeypatch):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")
    _stall_first_face_frame(monkeypatch, liveness.SHOWN_LATE_MAX_MS / 1000.0 + 1.0)
    cap = b.start("verify").get_json()
    buf = io.BytesIO()  # (other pixels than the retry's first frame: the replay store keeps every frame)
    Image.open(io.BytesIO(d3_turn_left_other[0])).save(buf, "JPEG", quality=80)
    status, body = _frame(b, cap, buf.getvalue(), 0.0)
    # the instruction would have appeared when the page had filmed its whole window: not shown at all
    assert status == 503 and body["error"] == "server_busy", body
    assert "liveness" not in body and "turn" not in str(body).lower(), body
    assert "did not count" in body["message"]
    assert cap["late_max_ms"] == liveness.SHOWN_LATE_MAX_MS  # (the page films that much past its window)
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["status"] == "finished" and doc.get("lv_cue_t") is None, doc.get("status")
    # the page closes the capture (closeQuietly): nothing to judge, nothing counted, no abandoned attempt
    fin = b.finish(cap)
    assert fin.status_code == 409, fin.get_json()
    assert int((db.face_status.find_one({"_id": uid}) or {}).get("failures") or 0) == 0
    # Try again: the server keeps up now; the person passes, still without a failure
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    assert int((db.face_status.find_one({"_id": uid}) or {}).get("failures") or 0) == 0


def test_a_late_answer_lengthens_the_window_and_a_pause_still_counts_from_it(live_app, new_user, d3_turn_left,
                                                                              monkeypatch):
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    db = get_db(app)
    stall = liveness.SHOWN_LATE_CAP_MS / 1000.0 + 0.5
    _stall_first_face_frame(monkeypatch, stall)
    cap = b.start("enroll").get_json()
    status, body = _frame(b, cap, d3_turn_left[0], 0.0)
    assert status == 200, body
    live = body["liveness"]
    late = liveness.SHOWN_LATE_CAP_MS  # (the stall alone is later than the cap)
    # the cue stays the drawn one (the burst's times are the page's); the window grows by the lateness
    assert live["cue_ms"] == cap["cue_ms"]
    assert live["window_ms"] == int(cap["window_ms"] + late), (live["window_ms"], cap["window_ms"], late)
    assert live["max_frames"] == cap["max_frames"] + late / liveness.INTERVAL_MS
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert float(doc["lv_late"]) == late and doc["lv_cue_t"] == cap["cue_ms"]
    # A client that waits after seeing the moves, then sends a frame stamped as if filmed right after the
    # first: the wait counts from when the moves were shown, not from the first frame's time.
    pause = 2.5
    time.sleep(pause)
    status, body = _frame(b, cap, d3_turn_left[1], 150.0)
    assert status == 200, body
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    t1 = doc["frames"][-1]["t_ms"]
    assert t1 >= late + pause * 1000.0 - liveness.IDLE_SLACK_MS, (t1, late)


def test_a_page_behind_a_late_answer_keeps_its_frames_times_and_passes(live_app, new_user, d3_turn_left,
                                                                        monkeypatch):
    # The page sends the frames it filmed while waiting (here: the clip at its own times, one after the other
    # as the server answers): moving the accounted burst time by the lateness moves none of them.
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    _stall_first_face_frame(monkeypatch, liveness.SHOWN_LATE_CAP_MS / 1000.0)
    cap, answers, fin = send_burst(b, "enroll", d3_turn_left)
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert float(doc.get("lv_shift") or 0.0) == 0.0, doc.get("lv_shift")
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    assert float(doc.get("lv_late") or 0.0) > 0.0  # (the answer was late)


def test_a_capture_is_either_shown_its_moves_or_closed_unshown_never_both(live_app, new_user):
    # The late frame's close and another frame's reveal race: the close is refused once the moves were
    # shown (lv_cue_t set), and a closed capture stores no reveal (set_once needs it open).
    from idp.faceweb import capture_sessions
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    db = get_db(app)
    captures = capture_sessions.Captures(db, None, 600)
    shown, unshown = b.start("enroll").get_json(), b.start("enroll").get_json()
    doc = db.capture_sessions.find_one({"_id": shown["capture_id"]})
    captures.set_once(doc, "lv_cue_t", 300.0)
    assert captures.close(doc, {"ok": False, "reasons": ["server_busy"]}, unless_set="lv_cue_t") is False
    assert db.capture_sessions.find_one({"_id": shown["capture_id"]})["status"] == "open"
    doc = db.capture_sessions.find_one({"_id": unshown["capture_id"]})
    assert captures.close(doc, {"ok": False, "reasons": ["server_busy"]}, unless_set="lv_cue_t") is True
    captures.set_once(doc, "lv_cue_t", 300.0)
    after = db.capture_sessions.find_one({"_id": unshown["capture_id"]})
    assert after["status"] == "finished" and after.get("lv_cue_t") is None
