"""The rule that makes up for a late answer showing moves (``idp.faceweb.liveness.shown_late_ms``,
``answered_update``'s ``lv_queue``, ``reveal_delay``, ``frame_budget``): measured from the server's own time
on the capture's frames (the page's queue by Lindley's recursion), never from the client's claims or waits;
at most SHOWN_LATE_CAP_MS over the capture, the next move's part only once it is shown. (End to end:
test_next_move_shown_late.py, and tests/security/test_face_next_late_bought_with_the_slack.py.)"""
from idp.faceweb import capture_sessions, liveness
from idp.faceweb.liveness import (
    INTERVAL_MS, SHOWN_LATE_CAP_MS, answered_update, frame_budget, reveal_delay, shown_late_ms,
)


def _doc(**kw):
    return {"purpose": "verify", "challenge": "turn_left+turn_right", "cue_ms": 300, "lv_cue_t": 300,
            "lv_t0": {"server": 10_000.0, "client": 0.0}, **kw}


def _serve(doc, services, gap=0.0, start=10_000.0):
    """The document after frames the server took ``services`` ms each on, each sent ``gap`` ms after the
    previous answer (a page with a queue sends at once)."""
    now = start
    for s in services:
        received = now + gap
        now = received + s
        upd = answered_update(doc, received, now, received_ms=received)
        doc = {**doc, **upd["$set"], "lv_answered": now}
    return doc, now


def test_the_queue_grows_by_what_each_frame_takes_past_an_interval_and_drains():
    doc, _ = _serve(_doc(), [250.0] * 10)  # a server slower than the filming: 100 ms more a frame
    assert doc["lv_queue"] == 10 * (250 - INTERVAL_MS)
    doc, _ = _serve(doc, [50.0] * 10)  # a quick server drains it
    assert doc["lv_queue"] == 0


def test_a_server_that_keeps_up_shows_nothing_late_however_long_the_client_waits():
    doc, now = _serve(_doc(), [100.0] * 5, gap=2_200.0)  # the client waits 2.2 s before each frame
    assert doc["lv_queue"] == 0
    assert shown_late_ms(doc, 2_000, 2_000, now, now + 100) == 100  # the frame's own analysis only


def test_a_refused_request_leaves_the_queue_as_it_is():
    """A request refused ("busy", or a picture refused after its decode) is no frame the page filmed: a
    client that provokes refusals - parallel requests, expensive bad pictures - must not queue itself late."""
    doc, now = _serve(_doc(), [250.0] * 3)
    assert doc["lv_queue"] == 300
    for upd in (answered_update(doc, now, now + 900),  # refused after 900 ms of decoding
                answered_update(doc, now, now + 5, retry_ms=1_000)):  # "busy": sent again a second later
        assert "lv_queue" not in upd.get("$set", {}), upd
    assert answered_update(doc, now, now + 5, retry_ms=1_000)["$max"]["lv_answered"] == now + 1_005  # excused


def test_lateness_is_the_queue_plus_the_servers_time_on_the_frame_against_the_moment_due():
    doc, now = _serve(_doc(), [250.0] * 12)  # 1.2 s of queue
    assert shown_late_ms(doc, 2_000, 2_000, now, now + 250) == 1_200 + 250  # the next move: due at its frame
    assert shown_late_ms(doc, 0, 300, now, now + 250) == 1_150  # the first ones: due at the cue
    assert shown_late_ms(doc, 2_000, 2_000, now, now + 60_000) == SHOWN_LATE_CAP_MS
    # a body received late (sent slowly) starts the server's time on it only once it is in
    assert shown_late_ms(doc, 2_000, 2_000, now + 5_000, now + 5_100) == 1_200 + 100


def test_the_time_made_up_counts_the_next_move_once_shown_and_the_cap_once():
    first = _doc(lv_cue_late=1_000.0, lv_next_late=2_000.0)  # (lv_next_late stored, lv_all_shown not yet)
    assert reveal_delay(first) == 1_000
    both = {**first, "lv_all_shown": True}
    assert reveal_delay(both) == SHOWN_LATE_CAP_MS == 2_500  # 1 s + 2 s, capped over the capture
    assert reveal_delay({**both, "lv_cue_t": 800}) == 500 + SHOWN_LATE_CAP_MS  # a face found late, as before
    assert liveness.filming_window_ms(both) == liveness.window_ms(both["challenge"]) + 2_500
    assert frame_budget(both) == capture_sessions.MAX_FRAMES_PER_CAPTURE + 17  # 2.5 s of 150 ms frames
    assert reveal_delay(_doc()) == 0 and frame_budget(_doc()) == capture_sessions.MAX_FRAMES_PER_CAPTURE
