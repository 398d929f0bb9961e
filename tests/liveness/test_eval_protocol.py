"""The evaluation's product protocol (benchmarks/liveness_rigidity_eval.py): every presentation is
judged by the capture API's own decision (idp.faceweb.liveness.evaluate on a capture-session
document), accepted as soon as a prefix passes - as the capture page stops filming then."""
import dataclasses
import sys
from pathlib import Path

import numpy as np

from idp.faceweb import liveness as web
from idp.liveness import assess
from idp.liveness.synthetic import head_burst, photo_burst, ramp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import liveness_rigidity_eval as E  # noqa: E402


def _jump_after(obs, k, dx):
    """Frames from ``k`` on moved by ``dx`` px (a fast move / splice after the turn)."""
    out = list(obs[:k])
    for o in obs[k:]:
        x, y, w, h = o.box
        out.append(dataclasses.replace(o, box=(x + dx, y, w, h),
                                       landmarks={n: (p[0] + dx, p[1]) for n, p in o.landmarks.items()},
                                       dense=o.dense + np.array([dx, 0, 0], np.float32)))
    return out


def test_the_stored_document_gives_the_same_decision_as_the_observations():
    for obs, ch in ((head_burst(yaw=ramp(25)), "turn_left"), (head_burst(yaw=ramp(25)), "turn_right"),
                    (photo_burst(yaw=ramp(40), depth_turns=1.0), "turn_left")):
        doc = E.to_doc(obs, ch)
        stored = web.observations(doc)
        assert all(np.abs(a.dense - b.dense).max() <= 0.07 for a, b in zip(obs, stored))  # 1/8 px rounding
        assert web.evaluate(doc).reasons == assess(obs, ch).reasons


def test_motion_after_the_passing_prefix_does_not_undo_it():
    obs = _jump_after(head_burst(yaw=ramp(25, start=0.1, top=0.4, back=None), n=20, fps=6.67), 16, 250.0)
    whole = assess(obs, "turn_left")
    assert not whole.passed and "face_discontinuity" in whole.reasons
    assert E.decide(obs, "turn_left").passed  # the product stops filming at the first passing prefix


def test_a_still_head_is_never_accepted_by_any_prefix():
    assert not E.decide(head_burst(n=30, fps=6.67), "turn_left").passed


def test_product_burst_films_every_150_ms_for_up_to_4_5_s():
    obs = head_burst(n=150, fps=15.0)  # a 10 s clip at 15 fps
    b = E.product_burst(obs, 1000.0, np.random.default_rng(0))
    assert len(b) == 31
    assert np.allclose([o.t_ms for o in b], np.arange(31) * 150.0, atol=40)
    assert E.product_burst(obs, 8500.0, np.random.default_rng(0)) is None  # < 2 s of clip left
