"""The rule that makes up for a late answer showing moves (``idp.faceweb.liveness.shown_late_ms``,
``reveal_delay``, ``frame_budget``): measured by the server's clock, at most SHOWN_LATE_CAP_MS over the
capture, the next move's part only once it is shown. (End to end: test_next_move_shown_late.py.)"""
from idp.faceweb import capture_sessions, liveness
from idp.faceweb.liveness import SHOWN_LATE_CAP_MS, frame_budget, reveal_delay, shown_late_ms


def _doc(**kw):
    return {"purpose": "verify", "challenge": "turn_left+turn_right", "cue_ms": 300, "lv_cue_t": 300,
            "lv_t0": {"server": 10_000.0, "client": 0.0}, **kw}


def test_lateness_is_the_server_clock_since_the_first_frame_less_the_moment_due():
    doc = _doc()
    assert shown_late_ms(doc, 300, 10_000 + 1_500) == 1_200  # answered 1.2 s after the cue it was due at
    assert shown_late_ms(doc, 2_000, 10_000 + 1_500) == 0  # on time (the server keeps up)
    assert shown_late_ms(doc, 300, 10_000 + 60_000) == SHOWN_LATE_CAP_MS
    assert shown_late_ms({"cue_ms": 300}, 300, 99_999) == 0  # no first frame: nothing to measure against


def test_the_time_made_up_counts_the_next_move_once_shown_and_the_cap_once():
    first = _doc(lv_cue_late=1_000.0, lv_next_late=2_000.0)  # (lv_next_late stored, lv_all_shown not yet)
    assert reveal_delay(first) == 1_000
    both = {**first, "lv_all_shown": True}
    assert reveal_delay(both) == SHOWN_LATE_CAP_MS == 2_500  # 1 s + 2 s, capped over the capture
    assert reveal_delay({**both, "lv_cue_t": 800}) == 500 + SHOWN_LATE_CAP_MS  # a face found late, as before
    assert liveness.filming_window_ms(both) == liveness.window_ms(both["challenge"]) + 2_500
    assert frame_budget(both) == capture_sessions.MAX_FRAMES_PER_CAPTURE + 17  # 2.5 s of 150 ms frames
    assert reveal_delay(_doc()) == 0 and frame_budget(_doc()) == capture_sessions.MAX_FRAMES_PER_CAPTURE
