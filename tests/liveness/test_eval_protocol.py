"""The liveness evaluation (benchmarks/liveness_eval.py, package benchmarks/liveness_bench) judges every
presentation with the product's own decision: the capture document the capture API stores, after each
frame :func:`idp.faceweb.liveness.decide` (= :func:`idp.liveness.decide_capture`), stopping when it says
``done``, good frames counted by the quality gate, near copies by the perceptual replay store."""
import dataclasses
import sys
from pathlib import Path

import numpy as np

from idp.faceweb import liveness as web
from idp.liveness import CaptureState, assess, decide_capture
from idp.liveness.synthetic import head_burst, photo_burst, ramp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from liveness_bench import protocol  # noqa: E402

THUMB = np.zeros((32, 32), np.uint8)


def _frames(obs, ok=True, fh=None, passive=1.0):
    """(stored record, thumbnail) per observation; thumbnails differ so the feed is not static. Face frames
    carry the passive score ``passive`` (the capture API scores every face frame; 1.0 = a live face)."""
    return [(protocol.stored_record(dataclasses.replace(o, passive=passive) if o.has_face else o, ok=ok, fh=fh),
             THUMB + 10 * (k % 3)) for k, o in enumerate(obs)]


def _jump_after(obs, k, dx):
    """Frames from ``k`` on moved by ``dx`` px (a fast move / splice after the turn)."""
    out = list(obs[:k])
    for o in obs[k:]:
        x, y, w, h = o.box
        out.append(dataclasses.replace(o, box=(x + dx, y, w, h),
                                       landmarks={n: (p[0] + dx, p[1]) for n, p in o.landmarks.items()},
                                       dense=o.dense + np.array([dx, 0, 0], np.float32)))
    return out


def _two_turns(first=25, second=-25, n=40):
    """A head turning one way, back, then the other way (yaw > 0 = the person's left)."""
    def yaw(s):
        for a, b, peak in ((0.15, 0.45, first), (0.55, 0.85, second)):
            if a <= s <= b:
                return peak * (1 - abs((s - (a + b) / 2) / ((b - a) / 2)))
        return 0.0
    return head_burst(yaw=yaw, n=n, fps=1000 / 150)


def test_the_evaluation_calls_the_products_decision_function():
    # the protocol asks the web layer's decide (what the capture API calls after every frame) ...
    assert protocol.web.decide is web.decide
    # ... which is idp.liveness.decide_capture on the stored document's state
    obs = _two_turns()
    doc = {"challenge": "turn_left+turn_right", "cue_ms": 300, "needed": 5, "count": len(obs), "good": len(obs),
           "frames": [r for r, _ in _frames(obs)], "lv_thumb_diff": 10.0}
    state = web.capture_state(doc)
    assert isinstance(state, CaptureState) and state.good == len(obs) and state.needed == 5
    assert web.decide(doc).result.reasons == decide_capture(state).result.reasons
    cap = protocol.run_capture(_frames(obs), "turn_left+turn_right", cue_ms=300, needed=5)
    assert cap.accepted and cap.decision.done


def test_the_stored_document_gives_the_same_decision_as_the_observations():
    for obs, ch in ((head_burst(yaw=ramp(25)), "turn_left"), (head_burst(yaw=ramp(25)), "turn_right"),
                    (photo_burst(yaw=ramp(40), depth_turns=1.0), "turn_left")):
        doc = {"challenge": ch, "frames": [r for r, _ in _frames(obs)], "count": len(obs), "lv_cue_t": 0}
        stored = web.observations(doc)
        assert all(np.abs(a.dense - b.dense).max() <= 0.07 for a, b in zip(obs, stored))  # 1/8 px rounding
        assert web.evaluate(doc).reasons == assess(obs, ch).reasons


def test_motion_after_the_passing_prefix_does_not_undo_it():
    obs = _jump_after(head_burst(yaw=ramp(25, start=0.1, top=0.4, back=None), n=20, fps=6.67), 16, 250.0)
    whole = assess(obs, "turn_left")
    assert not whole.passed and "face_discontinuity" in whole.reasons
    cap = protocol.run_capture(_frames(obs), "turn_left", cue_ms=0, needed=5)
    assert cap.accepted  # the frame answer said done at the first passing frame: the page stopped there
    assert len(cap.frames) < 16


def test_a_still_head_is_never_accepted():
    assert not protocol.run_capture(_frames(head_burst(n=30, fps=6.67)), "turn_left", cue_ms=0, needed=5).accepted


def test_good_frames_are_counted_by_the_quality_gate():
    # the same burst, every frame failing the quality gate: liveness passes (the first face showed the
    # moves), the capture is not accepted
    obs = _two_turns()
    cap = protocol.run_capture(_frames(obs, ok=False), "turn_left+turn_right", cue_ms=300, needed=5)
    assert cap.decision.passed and not cap.accepted and not cap.decision.failed  # incomplete, not a failure


def test_the_default_challenge_needs_both_moves_in_order():
    obs = _two_turns()
    assert not protocol.run_capture(_frames(obs), "turn_right+turn_left", cue_ms=300, needed=5).accepted
    one = head_burst(yaw=ramp(25), n=40, fps=1000 / 150)
    cap = protocol.run_capture(_frames(one), "turn_left+turn_right", cue_ms=300, needed=5)
    assert not cap.accepted and cap.reason == "challenge_not_performed"


def test_near_copies_of_the_users_stored_frames_refuse_the_capture():
    obs = _two_turns()
    fh = f"{(1 << 200) | 12345:064x}"
    frames = _frames(obs, fh=fh)
    cap = protocol.run_capture(frames, "turn_left+turn_right", cue_ms=300, needed=5, stored_hashes=[fh])
    assert not cap.accepted and cap.reason == "replayed_frame" and cap.decision.failed
    # refused at the 3rd near copy, as the capture API does: a copy of a stored frame counts from any frame
    # (the first face frame, which decides what is turned, is the client's to choose)
    assert len(cap.frames) == web.FACE_HASH_MIN_FRAMES == 3


def test_film_sends_a_frame_every_150_ms_for_up_to_the_window():
    recs = [{"t_ms": k * 1000 / 15, "i": k} for k in range(150)]  # a 10 s clip at 15 fps
    thumbs = np.zeros((150, 32, 32), np.uint8)
    b = protocol.film(recs, thumbs, 1000.0, 4500, np.random.default_rng(0))
    assert len(b) == 31
    assert np.allclose([r["t_ms"] for r, _ in b], np.arange(31) * 150.0, atol=40)  # time in the burst
    assert np.allclose([recs[r["i"]]["t_ms"] for r, _ in b], 1000 + np.arange(31) * 150.0, atol=40)  # source time
    assert protocol.film(recs, thumbs, 8500.0, 4500, np.random.default_rng(0)) is None  # < 2 s of clip left
    # a splice: once the source time passes 2000 ms the filming continues at 5000 ms, still every 150 ms
    cut = protocol.film(recs, thumbs, 1000.0, 4500, np.random.default_rng(0), cut=[(2000.0, 5000.0)])
    src = np.array([recs[r["i"]]["t_ms"] for r, _ in cut])
    assert len(cut) == 31 and np.all(np.diff(src)[np.diff(src) < 1000] <= 210)
    assert src[src < 2000].size == 7 and np.all(src[7:] >= 5000 - 40)
