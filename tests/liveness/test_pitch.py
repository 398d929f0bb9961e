"""The tilts (look_up / look_down): the pitch read from the same 3-D rotation as the yaw, and the decision
that takes a tilt through the same steps as a turn (threshold, direction, parallax and shape at the
frames that reach it, the facing-pose reference), on the synthetic 468-point head and flat pictures."""
import copy
import math

import numpy as np
import pytest

from idp.liveness import (
    LivenessSettings,
    assess,
    challenge_instruction,
    head_moves,
    hint_message,
    live_hint,
    min_pitch_words,
    reason_message,
)
from idp.liveness import rigidity
from idp.liveness.core import ASKED_PITCH_DEG, MIN_PITCH_DEG, PITCH_READ_SHARE
from idp.liveness.synthetic import head_burst, photo_burst, ramp

S = LivenessSettings()


def _pair(**kw):
    a, b = head_burst(n=2, noise_px=0.0, **kw)
    return a.dense.astype(np.float64)[rigidity.INNER], b.dense.astype(np.float64)[rigidity.INNER]


@pytest.mark.parametrize("deg", [-20.0, -12.0, 12.0, 20.0])
def test_pitch_reads_a_tilt_with_its_sign_and_the_yaw_stays_still(deg):
    # pitch > 0 = chin up (the nose tip moves towards the image top); a pure tilt leaves the yaw at ~0
    ref, cur = _pair(pitch=lambda s: deg * s)
    assert rigidity.pitch_deg(ref, cur) == pytest.approx(deg, abs=0.12 * abs(deg))
    assert abs(rigidity.yaw_deg(ref, cur)) < 0.5
    # and a pure turn leaves the pitch at ~0
    ref, cur = _pair(yaw=lambda s: deg * s)
    assert abs(rigidity.pitch_deg(ref, cur)) < 0.5


def test_pitch_is_the_same_in_a_mirror_image():
    a, b = head_burst(n=2, noise_px=0.0, pitch=lambda s: 15 * s, mirrored=True)
    assert rigidity.pitch_deg(a.dense[rigidity.INNER].astype(float), b.dense[rigidity.INNER].astype(float)) > 12


def test_predicted_parallax_of_a_tilt_is_that_of_the_rotated_head():
    ref = head_burst(n=1, noise_px=0.0)[0].dense.astype(np.float64)
    p = ref[rigidity.INNER]
    c, b = p.mean(0), math.radians(15.0)
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    q = (p - c) @ rx.T + c
    assert rigidity.pitch_deg(p, q) == pytest.approx(15.0, abs=1e-6)  # the same sign as pitch_deg
    assert rigidity.predicted_planar_residual(ref, 0.0, pitch=15.0) == pytest.approx(
        rigidity.planar_residual(p[:, :2], q[:, :2]))
    assert rigidity.predicted_planar_residual(ref, 0.0, pitch=15.0) > 0.02  # a head is not flat about this axis either


@pytest.mark.parametrize("challenge,deg", [("look_up", 22.0), ("look_down", -22.0)])
def test_a_head_tilting_passes_its_tilt_and_not_the_other(challenge, deg):
    other = "look_down" if challenge == "look_up" else "look_up"
    for seed in range(4):
        obs = head_burst(seed=seed, pitch=ramp(deg))
        r = assess(obs, challenge)
        assert r.passed, (seed, r)
        assert r.scores[f"{challenge}_deg"] >= S.min_pitch_deg
        assert r.scores["parallax_ratio"] >= S.min_parallax_ratio
        assert assess(obs, other).reasons == ["challenge_wrong_direction"]
        for turn in ("turn_left", "turn_right"):
            assert not assess(obs, turn).passed


def test_a_small_tilt_is_not_enough():
    # the pitch must reach min_pitch_deg: a tilt 2 degrees short of it does not, one 4 degrees past it does
    assert not assess(head_burst(pitch=ramp(S.min_pitch_deg - 2)), "look_up").passed
    assert assess(head_burst(pitch=ramp(S.min_pitch_deg + 4)), "look_up").passed


def test_a_sequence_of_a_turn_and_a_tilt():
    def two(a, b):
        return lambda s: ramp(a, 0.1, 0.25, 0.4)(s) if s < 0.5 else ramp(b, 0.55, 0.7, 0.85)(s)
    turn_then_tilt = head_burst(yaw=two(25, 0), pitch=two(0, -22), n=24, fps=1000 / 150)
    assert assess(turn_then_tilt, "turn_left+look_down").passed
    assert assess(turn_then_tilt, "turn_left+look_up").reasons == ["challenge_wrong_direction"]
    assert not assess(turn_then_tilt, "look_down+turn_left").passed
    # a sequence of turns reads tilts too: a tilt there is a wrong move, and its message says no turn was made
    assert assess(turn_then_tilt, "turn_left+turn_right").reasons == ["challenge_wrong_direction"]
    assert reason_message("challenge_wrong_direction", "turn_left+turn_right").startswith(
        "That was not the move asked for. Please turn your head to your left, then to your right")
    tilt_tilt = head_burst(pitch=two(22, 22), n=24, fps=1000 / 150)
    assert assess(tilt_tilt, "look_up+look_up").passed  # a return between the two tilts
    assert assess(tilt_tilt, "look_up+look_up").scores["moves_done"] == 2


def test_a_turn_that_nods_a_little_is_one_turn():
    # the move is the larger of the two relative to its threshold, and its own axis ends it: a turn that
    # nods past the tilt threshold meanwhile stays a turn
    left = np.array([0, 5, 14, 25, 25, 18, 9, 3, 0, 0], float)
    up = np.array([0, -2, -8, -13, -14, -12, -7, -2, 0, 0], float)
    moves = head_moves(left, up, 12.0, 12.0, 6.0)
    assert [m for m, _ in moves] == ["turn_left"]
    # a tilt alone, then a turn
    left = np.array([0, 0, 0, 0, 0, 14, 20, 3], float)
    up = np.array([0, 13, 15, 4, 0, 0, 0, 0], float)
    assert [m for m, _ in head_moves(left, up, 12.0, 12.0, 6.0)] == ["look_up", "turn_left"]
    # without a pitch series: the turns as before
    assert head_moves(left, None, 12.0, 12.0, 6.0) == [("turn_left", [5, 6])]


@pytest.mark.parametrize("pitch", [25.0, 40.0, -40.0, 55.0, -55.0])
def test_a_flat_picture_tilted_about_the_horizontal_axis_is_refused(pitch):
    for seed in range(3):
        for depth in (0.0, 0.4, 1.0):  # the model reads none, part or all of the paper's tilt as a head's
            obs = photo_burst(seed=seed, pitch=ramp(pitch), depth_turns=depth)
            for ch in ("look_up", "look_down", "look_up+look_down", "look_down+look_down"):
                r = assess(obs, ch)
                assert not r.passed, (pitch, depth, ch, r.scores)
            r = assess(obs, "look_up" if pitch > 0 else "look_down")
            if max(r.scores.get("look_up_deg", 0), r.scores.get("look_down_deg", 0)) >= S.min_pitch_deg:
                assert "planar_motion" in r.reasons, (pitch, depth, r.scores)


def test_a_picture_bent_about_the_horizontal_axis_and_tilted_is_refused():
    for seed in range(3):
        obs = photo_burst(seed=seed, pitch=ramp(35), bend=0.004, depth_turns=1.0)
        assert not assess(obs, "look_up").passed


def test_the_tilt_shown_to_people_is_the_real_tilt_the_decision_needs():
    # as for turns: a real tilt whose read reaches min_pitch_deg for most people, more than the median needs
    shown = int(min_pitch_words().split()[0])
    assert shown == ASKED_PITCH_DEG and shown * PITCH_READ_SHARE > MIN_PITCH_DEG
    assert LivenessSettings.min_pitch_deg == MIN_PITCH_DEG
    for ch in ("look_up", "look_down", "turn_left+look_up", "look_down+look_down"):
        assert f"{shown} degrees" in challenge_instruction(ch), ch
    assert challenge_instruction("turn_left+look_up").startswith("Turn your head to your left, then tilt your head up")
    assert challenge_instruction("look_up+look_down").startswith("Tilt your head up, then down")
    msg = reason_message("challenge_wrong_direction", "turn_right+look_down")
    # the wrong move may be a turn for the tilt: not called "the other way"
    assert msg.startswith("That was not the move asked for.") and "tilt your head down" in msg


def test_live_hints_for_a_tilt():
    r = assess(head_burst(pitch=ramp(-9, 0.2, 0.9, None), n=12), "look_up+turn_left")
    assert live_hint(r, "look_up+turn_left", S) == "other_way"
    assert hint_message("other_way", "look_up+turn_left") == "The other way: tilt your head up."
    r = assess(head_burst(pitch=ramp(S.min_pitch_deg - 2, 0.2, 0.9, None), n=12), "look_up+turn_left")
    assert live_hint(r, "look_up+turn_left", S) == "further"
    assert f"at least {min_pitch_words()}" in hint_message("further", "look_up+turn_left")
    r = assess(head_burst(pitch=ramp(22, 0.2, 0.6, None), n=12), "look_up+turn_left")
    assert live_hint(r, "look_up+turn_left", S) == "back"
    assert hint_message("turn", "look_up+turn_left", 1) == "Turn your head to your left."


def test_a_nod_on_the_way_back_from_a_turn_is_part_of_the_turn():
    # as in shared clip d3: the head comes back from a left turn with its chin up past the tilt threshold,
    # then turns right; the pitch never went back to the facing pose in between, so no tilt was performed
    left = np.array([0, 8, 14, 14, 9, 4, 0, 0, -13, -13, -5, 0], float)
    up = np.array([0, -3, 0, 5, 9, 13, 14, 12, 8, 3, 0, 0], float)
    assert [m for m, _ in head_moves(left, up, 12.0, 12.0, 6.0)] == ["turn_left", "turn_right"]
    # once the pitch was back at the facing pose, the same nod is a tilt
    up2 = np.array([0, -3, 0, 5, 9, 4, 14, 3, 0, 0, 0, 0], float)
    assert [m for m, _ in head_moves(left, up2, 12.0, 12.0, 6.0)] == ["turn_left", "look_up", "turn_right"]


def test_the_default_pool_gives_a_blind_try_at_most_one_chance_in_eight():
    """Two moves, one turn and one tilt in either order, drawn from the four measured moves: 8 equally likely
    sequences, so a fixed recording fits one blind try with probability 1/8 (the target: 1/8 or less)."""
    import random
    from collections import Counter

    from idp.liveness import MEASURED_MOVES, pick_challenge, sequences
    pool, n = LivenessSettings.allowed_challenges, LivenessSettings.sequence_length
    assert set(pool) == {"turn_left", "turn_right", "look_up", "look_down"} and set(pool) <= MEASURED_MOVES
    assert n == 2 and len(sequences()) == 8
    rng = random.Random(5)
    seen = Counter(pick_challenge(rng) for _ in range(3200))
    assert set(seen) == set(sequences())
    assert max(seen.values()) / sum(seen.values()) <= 1 / 8 + 0.02  # 1/8 each, up to sampling noise


def _rolled(obs, degrees):
    """The burst filmed rotated in the image plane by ``degrees(s)`` (s: the burst's progress) about each
    face's centre: its dense and five landmarks turned with it (as the models find them on a rolled face)."""
    out = []
    for i, o in enumerate(obs):
        a = math.radians(degrees(i / max(len(obs) - 1, 1)))
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        c = np.array([o.box[0] + o.box[2] / 2, o.box[1] + o.box[3] / 2])
        dense = o.dense.astype(np.float64)
        dense[:, :2] = (dense[:, :2] - c) @ rot.T + c
        o = copy.deepcopy(o)
        o.dense = dense.astype(o.dense.dtype)
        o.landmarks = {k: tuple((np.asarray(v, float) - c) @ rot.T + c) for k, v in o.landmarks.items()}
        out.append(o)
    return out


def test_a_turn_filmed_rolled_is_no_tilt_even_if_the_roll_is_lifted_during_the_move():
    """A turn filmed rotated in the image plane reads as a tilt (tests/liveness/test_real_data.py on a real
    clip). Rolled 60 degrees while the move starts (which fixes its axis), then brought back to 15 degrees at
    the turn's peak, some frames that reach the move are upright: one upright frame among them passed the
    move before; every frame that reaches it must be upright. Upright, the same turn is a turn."""
    def lifted(s):  # 60 until the move has started, 15 at the peak, 60 again on the way back
        return 60.0 if s < 0.36 else 60.0 - 45.0 * min(1.0, (s - 0.36) / 0.14) if s < 0.7 else \
            15.0 + 45.0 * min(1.0, (s - 0.7) / 0.15)
    for seed in range(4):
        obs = head_burst(seed=seed, yaw=ramp(45.0), n=24)
        assert assess(obs, "turn_left").passed
        for roll in (lifted, lambda s: 60.0):
            r = assess(_rolled(obs, roll), "look_down")
            assert not r.passed, (seed, r.scores)
            assert r.scores["move_roll_deg"] > S.max_move_roll_deg
