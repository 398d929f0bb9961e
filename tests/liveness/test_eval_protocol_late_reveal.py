"""The liveness evaluation judges a capture whose moves were shown late as the product does.

The capture API judges every capture with :func:`idp.faceweb.liveness.settings` of its document: when
the first face found (which shows the moves) comes after the drawn cue, the time limits
(``challenge_window_ms``, ``max_duration_ms``) grow by as much. The evaluation (benchmarks/liveness_bench)
passes its own settings (``protocol.product_settings()``, made from a document without a reveal): those
must not undo the lengthening, or the measured error rates are those of another product.
"""
import sys
from pathlib import Path

from idp.liveness.synthetic import head_burst

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from liveness_bench import protocol  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_eval_protocol import _frames  # noqa: E402


def _late_two_turns():
    """~10 s at 150 ms: facing the camera (no face found for the first 3 s), then left, back, right."""
    def yaw(s):
        for a, b, peak in ((0.40, 0.55, 25.0), (0.60, 0.72, -25.0)):
            if a <= s <= b:
                return peak * (1 - abs((s - (a + b) / 2) / ((b - a) / 2)))
        return 0.0
    return head_burst(yaw=yaw, n=67, fps=1000 / 150)


def test_the_evaluation_keeps_the_lengthened_window_of_a_late_reveal():
    obs = _late_two_turns()
    frames = _frames(obs)
    for k in range(20):  # the first 3 s: no face found (the moves are shown with the first face)
        rec = protocol.stored_record(obs[k], ok=False)
        frames[k] = ({key: rec[key] for key in ("t_ms", "w", "h", "ok", "reasons")}, frames[k][1])
    product = protocol.run_capture(frames, "turn_left+turn_right", cue_ms=300, needed=5)  # settings(doc)
    assert product.accepted, product.decision.reasons  # the capture API accepts it
    bench = protocol.run_capture(frames, "turn_left+turn_right", cue_ms=300, needed=5,
                                 settings=protocol.product_settings())
    assert bench.accepted == product.accepted and bench.decision.reasons == product.decision.reasons, \
        bench.decision.reasons
