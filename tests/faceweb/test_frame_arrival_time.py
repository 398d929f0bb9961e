"""A frame's receive time is when its request reached the server, not when the capture code got to it.

The burst's clock (idp.faceweb.liveness.frame_time) counts the server's wait between answering one frame
and receiving the next, beyond a 2 s slack, as filming time: a client cannot hide a pause. The server's own
work before the capture code - reading the session and sign-in state, slow on a loaded server - is not the
client's pause: counted, it moved every later frame and an overloaded server refused people as
"did not arrive in time". Real app, real MongoDB server, real face engine on frames of a shared clip.
"""
from __future__ import annotations

import time

from idp import get_db
from idp.faceweb import views

from .test_liveness_web import d3_turn_left, live_app, send_burst, signed_in  # noqa: F401  (fixtures)

STALL_S = 2.6  # longer than the 2 s slack (idp.faceweb.liveness.IDLE_SLACK_MS)


def test_server_work_before_the_capture_code_is_not_a_client_pause(live_app, new_user, d3_turn_left, monkeypatch):
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    calls, real = [], views._password_uid

    def slow_on_the_fifth_frame():
        calls.append(1)
        if len(calls) == 6:  # (1: the start; 2-: frames) the server stalls before the capture code
            time.sleep(STALL_S)
        return real()

    monkeypatch.setattr(views, "_password_uid", slow_on_the_fifth_frame)
    cap, answers, fin = send_burst(b, "enroll", d3_turn_left)
    assert len(calls) > 6, "the stall happened before the burst was over"
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert float(doc.get("lv_shift") or 0.0) == 0.0, doc.get("lv_shift")  # no frame was moved
    assert fin.get_json()["ok"] is True, fin.get_json()
