"""The burst's clock (idp.faceweb.liveness.frame_time): a live page's frames keep their own times, whatever
the server's speed, a backlog or a jittery upload; a client's pause counts as filming time, in one piece or
spread over frames sent during it.

The timelines are simulated: a page that films every INTERVAL_MS and sends each frame when the previous
answer is in (a queued one at once), a server that takes ``work_ms`` per frame, and the capture document's
fields as the capture API keeps them (``lv_t0``, ``lv_shift``, the frames' ``t_ms``, and at each answer
``lv_answered``, ``lv_arrived``, ``lv_paced``, ``lv_busy_excused``: ``liveness.answered_update``). The real-app tests of the same rule are
tests/faceweb/test_frame_arrival_time.py and tests/security/test_face_pause_hidden_by_keepalive_frames.py.
"""
from __future__ import annotations

import pytest

from idp.faceweb.liveness import BUSY_EXCUSED_MS, IDLE_SLACK_MS, INTERVAL_MS, answered_update, frame_time

CLIENT_OFFSET_MS = 5_000_000.0  # the browser's clock is not the server's


def _apply(doc: dict, update: dict) -> None:
    """A MongoDB update of ``$inc`` and ``$max`` applied to a plain document."""
    for field, v in update.get("$inc", {}).items():
        doc[field] = float(doc.get(field) or 0.0) + v
    for field, v in update.get("$max", {}).items():
        doc[field] = max(float(doc.get(field) if doc.get(field) is not None else v), v)


def _serve(sends) -> tuple[list[float], float]:
    """Run ``sends`` - ``(claimed_ms, arrival_ms, work_ms)`` per frame, in the page's clock and the
    server's, with a fourth item ``retry_ms`` for a request answered "busy" at once - through frame_time
    and the capture document's updates as the capture API makes them; the frames' burst times and the final
    shift."""
    doc: dict = {"frames": []}
    times = []
    for claimed, arrival, work, *busy in sends:
        if busy:  # refused before any analysis: no frame time, the answer's update only
            _apply(doc, answered_update(doc, arrival, arrival, retry_ms=busy[0]))
            continue
        t, origin, shift = frame_time(doc, arrival, claimed + CLIENT_OFFSET_MS)
        if origin is not None:
            doc["lv_t0"] = origin
        doc["lv_shift"] = max(float(doc.get("lv_shift") or 0.0), shift)
        doc["frames"].append({"t_ms": t})
        times.append(t)
        _apply(doc, answered_update(doc, arrival, arrival + work))
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


@pytest.mark.parametrize("work_ms, upload_ms", [
    (90.0, lambda k: 30.0),  # a fast server
    (260.0, lambda k: 40.0),  # a slow one: the page queues its frames and sends each at once
    (90.0, lambda k: 250.0 if k % 2 else 40.0),  # a jittery network: the page falls behind now and then
    (120.0, lambda k: 150.0),  # a round trip of 150 ms (an ocean) behind a slow server: ever further behind
], ids=["fast server", "slow server", "jittery network", "an ocean away"])
def test_a_live_page_keeps_its_frames_times(work_ms, upload_ms):
    """(``upload_ms``: a round trip when the page is behind, since it sends a queued frame as the previous
    answer comes back and the server receives it a round trip after answering.)"""
    times, shift = _serve(_page(40, work_ms, upload_ms))
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_a_longer_round_trip_moves_frames_once_the_slack_is_spent():
    # the cost of the rule: a 300 ms round trip behind a page that fell behind adds 150 ms a frame beyond
    # the frames' own times, so after about 2 s / 150 ms frames the later ones move
    times, shift = _serve(_page(40, 120.0, lambda k: 300.0))
    moved = [k for k, t in enumerate(times) if t > k * INTERVAL_MS]
    assert moved and 10 <= moved[0] <= 16, moved[:3]


def test_a_pause_in_one_piece_counts_beyond_the_slack():
    sends = _page(10, 90.0, lambda k: 30.0)
    claimed, arrival, work = sends[-1]
    sends.append((claimed + INTERVAL_MS, arrival + work + 5000.0, work))  # 5 s without a frame
    times, shift = _serve(sends)
    assert times[-1] >= times[-2] + 5000.0 - IDLE_SLACK_MS


def _pause_with_frames(every_ms: float, pause_ms: float = 7200.0) -> tuple[float, float]:
    """A live page for 10 frames, then a pause of ``pause_ms`` during which a frame is sent every
    ``every_ms``, each claiming to be filmed 5 ms after the last: the burst time the pause moved the
    last frame by, and the pause."""
    sends = _page(10, 90.0, lambda k: 30.0)
    claimed, arrival, work = sends[-1]
    for _ in range(int(pause_ms // every_ms)):
        claimed, arrival = claimed + 5.0, arrival + every_ms
        sends.append((claimed, arrival, work))
    times, _ = _serve(sends)
    return times[-1] - times[9], pause_ms


def test_a_pause_spread_over_frames_sent_during_it_counts_beyond_the_slack():
    # a frame every 1.8 s: no single wait is over the slack (the pause was hidden when the slack was per
    # frame); all of it counts but the slack and the server's work on those frames
    moved, pause = _pause_with_frames(IDLE_SLACK_MS - 200.0)
    assert moved >= pause - IDLE_SLACK_MS - 4 * 90.0 - 4 * 5.0, moved


def test_a_pause_spread_over_a_frame_every_interval_still_counts():
    # a frame every interval (the page's own pace), each claiming 5 ms: each request adds an interval
    moved, pause = _pause_with_frames(INTERVAL_MS)
    assert moved >= pause - IDLE_SLACK_MS - INTERVAL_MS, moved


def test_the_least_counted_share_of_a_pause_spread_over_frames():
    # the attacker's best pace: a frame an interval plus the server's work apart; still most of it counts
    moved, pause = _pause_with_frames(INTERVAL_MS + 90.0)
    assert moved >= 0.6 * pause - IDLE_SLACK_MS, moved


def test_a_busy_answer_and_the_retry_a_second_later_are_not_a_pause():
    # frame 10 is answered "busy": the page sends it again after the answer's retry_after (1 s), then the
    # frames it filmed meanwhile at once, and keeps up again
    sends, answered = [], 0.0
    for k in range(40):
        filmed = k * INTERVAL_MS
        arrival = max(filmed, answered) + 30.0
        if k == 10:
            sends.append((filmed, arrival, 0.0, 1000.0))
            arrival += 1000.0
        sends.append((filmed, arrival, 90.0))
        answered = arrival + 90.0
    times, shift = _serve(sends)
    assert shift == 0.0
    assert times == [k * INTERVAL_MS for k in range(40)]


def test_busy_answers_do_not_hide_a_pause():
    # a client that has its requests answered "busy" (a slot it keeps full) during a pause is excused at
    # most BUSY_EXCUSED_MS of it
    sends = _page(10, 90.0, lambda k: 30.0)
    claimed, arrival, work = sends[-1]
    for _ in range(7):  # 8 s of "busy" answers, each a little after the retry time the last one gave
        arrival += 1150.0
        sends.append((claimed, arrival, 0.0, 1000.0))
    sends.append((claimed + 5.0, arrival + 1150.0, work))
    times, _ = _serve(sends)
    assert times[-1] - times[-2] >= 8 * 1150.0 - IDLE_SLACK_MS - BUSY_EXCUSED_MS - INTERVAL_MS, times[-2:]
