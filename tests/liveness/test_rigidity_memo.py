"""The liveness decision, made again after every frame of a capture, computes each frame's 3-D comparison
once (the comparisons are memoised, exact): its work per frame no longer grows with the frames received,
and its answers are those of the unmemoised functions."""
import numpy as np

from idp.liveness import CaptureState, LivenessSettings, assess, decide_capture, rigidity
from idp.liveness.synthetic import head_burst, photo_burst, ramp


def two_turns(first: float, second: float):
    a, b = ramp(first, 0.1, 0.25, 0.4), ramp(second, 0.5, 0.65, 0.8)
    return lambda s: a(s) + b(s)


def test_memoised_comparisons_equal_the_computation_and_copies_are_returned():
    obs = head_burst(yaw=ramp(25), n=10, seed=3)
    ref, cur = obs[0].dense.astype(np.float64), obs[6].dense
    fresh = rigidity.compare.__wrapped__(ref, cur)
    first, again = rigidity.compare(ref, cur), rigidity.compare(ref, cur)
    assert first == fresh == again
    first["yaw"] = 99.0  # a caller changing its answer does not change the kept one
    assert rigidity.compare(ref, cur) == fresh
    # another array with the same values is the same key; different values are another key
    assert rigidity.compare(ref.copy(), cur.copy()) == fresh
    other = rigidity.compare(ref, obs[7].dense)
    assert other == rigidity.compare.__wrapped__(ref, obs[7].dense) and other != fresh
    assert rigidity.predicted_planar_residual(ref, 14.0) == rigidity.predicted_planar_residual.__wrapped__(ref, 14.0)


def test_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(rigidity, "MEMO_SIZE", 5)
    obs = head_burst(yaw=ramp(25), n=12, seed=4)
    ref = obs[0].dense
    for o in obs:
        rigidity.compare(ref, o.dense)
    assert len(rigidity.compare.cache) <= 5


def _decisions_after_each_frame(obs, challenge, cue_ms=300.0):
    out = []
    for k in range(1, len(obs) + 1):
        state = CaptureState(observations=obs[:k], challenge=challenge, cue_ms=cue_ms, thumb_diff=5.0, frames=k,
                             good=k, needed=5, elapsed_ms=obs[k - 1].t_ms, window_ms=6000.0)
        out.append(decide_capture(state, LivenessSettings()))
    return out


def test_decision_after_each_frame_computes_each_comparison_about_once():
    obs = head_burst(yaw=two_turns(25, -25), n=24, seed=11)
    before = rigidity.compare.computed
    decisions = _decisions_after_each_frame(obs, "turn_left+turn_right")
    computed = rigidity.compare.computed - before
    # the starting pose changes once (1 frame, then the median of 2 from the 6th), so each frame is
    # compared at most twice; without the memo the 24 decisions would compare sum(1..24) = 300 times
    assert computed <= 2 * len(obs), computed
    assert decisions[-1].accepted or decisions[-1].done


def test_memo_changes_no_decision(monkeypatch):
    cases = [(head_burst(yaw=two_turns(25, -25), n=24, seed=s), "turn_left+turn_right") for s in range(3)]
    cases += [(head_burst(yaw=two_turns(25, -25), n=24, seed=5), "turn_right+turn_left"),
              (photo_burst(yaw=two_turns(40, -40), n=24, seed=2), "turn_left+turn_right"),
              (head_burst(yaw=ramp(9), n=20, seed=6), "turn_left+turn_right")]
    memo = [[(d.done, d.accepted, d.failed, d.reasons, d.result.scores) for d in _decisions_after_each_frame(o, c)]
            for o, c in cases]
    monkeypatch.setattr(rigidity, "compare", rigidity.compare.__wrapped__)
    monkeypatch.setattr(rigidity, "predicted_planar_residual", rigidity.predicted_planar_residual.__wrapped__)
    plain = [[(d.done, d.accepted, d.failed, d.reasons, d.result.scores) for d in _decisions_after_each_frame(o, c)]
             for o, c in cases]
    assert memo == plain
    assert any(d[1] for d in memo[0]) and not any(d[1] for d in memo[4])  # a head passes, a picture does not
    assert assess(cases[0][0], "turn_left+turn_right").passed


def test_memo_keys_are_exact_and_unkeyable_arguments_are_computed():
    calls = []

    @rigidity.memoised
    def echo(v):
        calls.append(v)
        return repr(v)

    assert [echo(0.0), echo(-0.0), echo(1), echo(1.0), echo(True)] == ["0.0", "-0.0", "1", "1.0", "True"]
    assert len(calls) == 5  # five different keys, none taken for another
    big = [np.zeros(2000), np.ones(2000)]  # a list (its repr would be abbreviated): never memoised
    echo(big), echo(big)
    assert len(calls) == 7 and echo.computed == 5
