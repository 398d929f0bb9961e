"""The evaluation's product protocol (benchmarks/liveness_eval.py): a burst is accepted as soon as a
prefix passes, as the capture page stops filming then - motion after the turn cannot undo it."""
import dataclasses
import sys
from pathlib import Path

import numpy as np

from idp.liveness import LivenessSettings, assess
from idp.liveness.synthetic import head_burst, ramp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import liveness_eval as E  # noqa: E402


def _jump_after(obs, k, dx):
    """Frames from ``k`` on moved by ``dx`` px (a fast move / splice after the turn)."""
    out = list(obs[:k])
    for o in obs[k:]:
        x, y, w, h = o.box
        out.append(dataclasses.replace(o, box=(x + dx, y, w, h),
                                       landmarks={n: (p[0] + dx, p[1]) for n, p in o.landmarks.items()}))
    return out


def test_motion_after_the_passing_prefix_does_not_undo_it():
    obs = _jump_after(head_burst(yaw=ramp(25, start=0.1, top=0.4, back=None), n=20, fps=6.67), 16, 250.0)
    whole = assess(obs, "turn_left")
    assert not whole.passed and "face_discontinuity" in whole.reasons  # previous protocol: rejected
    r, trace = E.decide(obs, "turn_left", LivenessSettings())
    assert r.passed  # the product stops filming at the first passing prefix
    assert E.passes_at(trace, 0.10) and not E.passes_at(trace, 1.0)


def test_a_still_head_is_never_accepted_by_any_prefix():
    r, trace = E.decide(head_burst(n=30, fps=6.67), "turn_left", LivenessSettings())
    assert not r.passed and not E.passes_at(trace, 0.10)


def test_product_burst_films_every_150_ms_for_up_to_4_5_s():
    obs = head_burst(n=150, fps=15.0)  # a 10 s clip at 15 fps
    b = E.product_burst(obs, 1000.0, np.random.default_rng(0))
    assert len(b) == 31
    assert np.allclose([o.t_ms for o in b], np.arange(31) * 150.0, atol=40)
    assert E.product_burst(obs, 8500.0, np.random.default_rng(0)) is None  # < 2 s of clip left
