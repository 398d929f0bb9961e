"""The burst's clock (idp.faceweb.liveness.frame_time): a live page's frames keep their own times, whatever
the server's speed, a backlog or a jittery upload; a client's pause counts as filming time, in one piece or
spread over frames sent during it.

The timelines are simulated: a page that films every INTERVAL_MS and sends each frame when the previous
answer is in (a queued one at once), a server that takes ``work_ms`` per frame, and the capture document's
fields as the capture API keeps them (``lv_t0``, ``lv_shift``, the frames' ``t_ms``, and at each answer
``lv_answered`` and ``lv_waited``). The real-app tests of the same rule are
tests/faceweb/test_frame_arrival_time.py and tests/security/test_face_pause_hidden_by_keepalive_frames.py.
"""
from __future__ import annotations

from idp.faceweb.liveness import IDLE_SLACK_MS, INTERVAL_MS, frame_time, wait_ms

CLIENT_OFFSET_MS = 5_000_000.0  # the browser's clock is not the server's


def _serve(sends) -> tuple[list[float], float]:
    """Run ``sends`` - ``(claimed_ms, arrival_ms, work_ms)`` per frame, in the page's clock and the
    server's - through frame_time as the capture API does; the frames' burst times and the final shift."""
    doc: dict = {"frames": []}
    times = []
    for claimed, arrival, work in sends:
        t, origin, shift = frame_time(doc, arrival, claimed + CLIENT_OFFSET_MS)
        if origin is not None:
            doc["lv_t0"] = origin
        doc["lv_shift"] = max(float(doc.get("lv_shift") or 0.0), shift)
        doc["frames"].append({"t_ms": t})
        times.append(t)
        doc["lv_waited"] = float(doc.get("lv_waited") or 0.0) + wait_ms(doc, arrival)
        doc["lv_answered"] = max(float(doc.get("lv_answered") or 0.0), arrival + work)
    return times, float(doc.get("lv_shift") or 0.0)


def _page(n: int, work_ms: float, upload_ms) -> list[tuple[float, float, float]]:
    """A live page: frame k filmed at k * INTERVAL_MS, sent once filmed and the previous answer is in,
    arriving ``upload_ms(k)`` later."""
    sends, answered = [], 0.0
    for k in range(n):
        filmed = k * INTERVAL_MS
        arrival = max(filmed, answered) + upload_ms(k)
        sends.append((filmed, arrival, work_ms))
        answered = arrival + work_ms
    return sends


def test_a_live_page_keeps_its_frames_times_with_a_fast_server():
    times, shift = _serve(_page(40, 90.0, lambda k: 30.0))
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_a_backlog_of_a_slow_server_is_not_a_pause():
    # the server takes longer than the filming interval: the page queues its frames and sends each at once
    times, shift = _serve(_page(40, 260.0, lambda k: 40.0))
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_a_jittery_network_is_not_a_pause():
    # every other frame arrives 250 ms after it was sent, the others 40 ms: the waits come and go (the page
    # falls behind now and then), the page's frames keep their times
    times, shift = _serve(_page(40, 90.0, lambda k: 250.0 if k % 2 else 40.0))
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_a_page_a_continent_away_behind_a_slow_server_is_not_a_pause():
    # a round trip of 280 ms (the page sends a queued frame as the answer comes back, the server receives it
    # a round trip after answering) and 120 ms of work a frame: the page falls ever further behind
    times, shift = _serve(_page(40, 120.0, lambda k: 280.0))
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_a_pause_in_one_piece_counts_beyond_the_slack():
    sends = _page(10, 90.0, lambda k: 30.0)
    claimed, arrival, work = sends[-1]
    sends.append((claimed + INTERVAL_MS, arrival + work + 5000.0, work))  # 5 s without a frame
    times, shift = _serve(sends)
    assert times[-1] >= times[-2] + 5000.0 - IDLE_SLACK_MS


def test_a_pause_spread_over_frames_sent_during_it_counts_beyond_the_slack():
    # a frame every 1.8 s for 7.2 s, each claiming to be filmed 5 ms after the last: no single wait is over
    # the slack, the pause is (it was hidden when the slack was granted per frame)
    sends = _page(10, 90.0, lambda k: 30.0)
    claimed, arrival, work = sends[-1]
    for _ in range(4):
        claimed, arrival = claimed + 5.0, arrival + work + IDLE_SLACK_MS - 200.0
        sends.append((claimed, arrival, work))
    times, shift = _serve(sends)
    paused = 4 * (IDLE_SLACK_MS - 200.0)
    # counted: the pause less the slack, an interval per request sent during it, and the burst time the
    # frames before it had claimed beyond the server's waits (here all of it: the page kept up)
    assert times[-1] - times[9] >= paused - IDLE_SLACK_MS - 4 * INTERVAL_MS - times[9], (times[9], times[-1])
    assert times[-1] - times[9] >= 3000.0  # (a burst is 4.5-6 s: the pause no longer fits in one unseen)
