"""Each liveness check on synthetic landmark bursts (3-D head model vs flat picture)."""
import dataclasses
import random
from types import SimpleNamespace

import numpy as np
import pytest

from idp.liveness import (
    CHALLENGE_INSTRUCTIONS,
    REASON_MESSAGES,
    Challenge,
    FrameObservation,
    LivenessSettings,
    assess,
    challenge_instruction,
    min_turn_words,
    observation_from_analysis,
    pick_challenge,
    reason_message,
    sequences,
)
from idp.liveness.synthetic import head_burst, photo_burst, ramp

TURNS = {
    "turn_left": dict(yaw=ramp(25)),
    "turn_right": dict(yaw=ramp(-25)),
}
TILTS_OF_THE_HEAD = {  # pitch > 0: chin up
    "look_up": dict(pitch=ramp(22)),
    "look_down": dict(pitch=ramp(-22)),
}
MEASURED = {**TURNS, **TILTS_OF_THE_HEAD}
OTHER_MOVES = {
    "move_closer": dict(distance=lambda s: 600 - 250 * min(s / 0.6, 1.0)),
}
MOVES = {**MEASURED, **OTHER_MOVES}


# --- challenges -------------------------------------------------------------------------------

@pytest.mark.parametrize("challenge", list(MEASURED))
def test_real_head_performing_the_move_passes(challenge):
    for seed in range(5):
        r = assess(head_burst(seed=seed, **MEASURED[challenge]), challenge)
        assert r.passed, (seed, r)
        assert r.scores[f"{challenge}_deg"] >= LivenessSettings().min_turn_deg
        assert r.scores["parallax_ratio"] >= LivenessSettings().min_parallax_ratio


@pytest.mark.parametrize("challenge", list(OTHER_MOVES))
def test_challenges_without_a_3d_check_fail_closed(challenge):
    # move_closer has no dense-landmark test: never accepted
    for kw in MOVES.values():
        assert assess(head_burst(seed=3, **kw), challenge).reasons == ["challenge_not_performed"]


@pytest.mark.parametrize("challenge", list(MEASURED))
def test_other_movements_do_not_satisfy_the_challenge(challenge):
    for other, kw in MOVES.items():
        if other == challenge:
            continue
        r = assess(head_burst(seed=3, **kw), challenge)
        assert not r.passed, (other, r)


def test_wrong_direction_is_reported():
    r = assess(head_burst(yaw=ramp(-25)), "turn_left")
    assert r.reasons == ["challenge_wrong_direction"]
    assert "left" in reason_message(r.reasons[0], "turn_left")


def test_still_head_does_not_perform_any_challenge():
    for ch in MOVES:
        r = assess(head_burst(seed=1), ch)
        assert not r.passed and "challenge_not_performed" in r.reasons


def test_small_turn_is_not_enough():
    # the 3-D yaw must reach min_turn_deg: a turn 2 degrees short of it does not, one 4 degrees past it does
    deg = LivenessSettings().min_turn_deg
    assert not assess(head_burst(yaw=ramp(deg - 2)), "turn_left").passed
    assert assess(head_burst(yaw=ramp(deg + 4)), "turn_left").passed


def _settling(first_deg, turn_deg):
    """A head that is still settling at the first frames (``first_deg`` towards its left), then faces
    the camera, turns ``turn_deg`` to its left from there and comes back (20 frames at 150 ms)."""
    def yaw(s):
        if s < 0.1:
            return first_deg
        return ramp(turn_deg, start=0.3, top=0.55, back=0.8)(s)
    return head_burst(yaw=yaw, n=30, fps=1000 / 150)


def test_turns_are_measured_from_the_pose_facing_the_camera_not_the_first_frames():
    # the first two frames are 4 degrees to the left: from them a turn 2 degrees past min_turn_deg measures
    # 2 short of it (fails), from the pose the person holds facing the camera (most frames within
    # return_deg) it measures what it measures without the settling
    deg = LivenessSettings().min_turn_deg
    r = assess(_settling(4.0, deg + 2), "turn_left")
    assert r.passed, r
    assert abs(r.scores["turn_left_deg"] - assess(_settling(0.0, deg + 2), "turn_left").scores["turn_left_deg"]) < 1.0
    # the reference moves at most return_deg: a turn 2 degrees short after a settling of 4 degrees the
    # other way (2 past it from the first frames) still fails
    assert not assess(_settling(-4.0, deg - 2), "turn_left").passed


def test_turn_and_back_does_not_count_as_the_opposite_turn():
    # turning right then back to the front is a leftward motion, but not a left turn
    r = assess(head_burst(yaw=ramp(-25, back=0.8)), "turn_left")
    assert not r.passed


def test_without_dense_landmarks_nothing_passes():
    obs = [dataclasses.replace(o, dense=None) for o in head_burst(yaw=ramp(25))]
    assert assess(obs, "turn_left").reasons == ["challenge_not_performed"]


def test_mirrored_frames():
    s = LivenessSettings(mirrored=True)
    obs = head_burst(yaw=ramp(25), mirrored=True)
    assert assess(obs, "turn_left", s).passed
    assert not assess(obs, "turn_right", s).passed
    assert not assess(obs, "turn_left").passed  # unmirrored reading sees a right turn


def test_challenge_too_late():
    obs = head_burst(yaw=ramp(25, start=0.7, top=0.95, back=None), n=20, fps=3.0)  # ~6.3 s burst
    s = LivenessSettings(challenge_window_ms=4000.0)
    r = assess(obs, "turn_left", s)
    assert "challenge_too_late" in r.reasons
    assert assess(obs, "turn_left", dataclasses.replace(s, challenge_window_ms=7000.0)).passed


def test_unknown_challenge():
    assert assess(head_burst(yaw=ramp(25)), "do_a_barrel_roll").reasons == ["unknown_challenge"]
    assert assess(head_burst(yaw=ramp(25)), Challenge.TURN_LEFT).passed


# --- planar pictures --------------------------------------------------------------------------

TILTS = [dict(yaw=ramp(25)), dict(yaw=ramp(40)), dict(yaw=ramp(-55)), dict(pitch=ramp(40)),
         dict(yaw=ramp(30), pitch=ramp(-25)), dict(yaw=ramp(35), bend=0.004)]


@pytest.mark.parametrize("kw", TILTS)
def test_tilted_picture_fails(kw):
    for seed in range(3):
        obs = photo_burst(seed=seed, **kw)
        for ch in TURNS:
            assert not assess(obs, ch).passed, (kw, ch)


@pytest.mark.parametrize("kw", TILTS)
def test_tilted_picture_whose_depth_seems_to_turn_is_planar(kw):
    # worst case: the landmark model reads the paper's turn as a head turn (3-D yaw over the
    # threshold); the image positions still follow a homography, so the parallax test refuses it
    for seed in range(3):
        obs = photo_burst(seed=seed, depth_turns=1.0, **kw)
        for ch in TURNS:
            r = assess(obs, ch)
            assert not r.passed
            if r.scores.get(f"{ch}_deg", 0) >= LivenessSettings().min_turn_deg:
                assert "planar_motion" in r.reasons, (kw, ch, r.scores)


@pytest.mark.parametrize("share", [0.25, 0.4, 0.6])
def test_picture_turned_far_is_foreshortened_beyond_its_3d_turn(share):
    # a print turned 55 degrees that the model reads as a smaller head turn (as measured on real prints):
    # the 3-D landmarks do not move as one rigid shape -> refused even when the yaw is reached
    for seed in range(3):
        r = assess(photo_burst(seed=seed, yaw=ramp(55), depth_turns=share), "turn_left")
        assert not r.passed
        if r.scores.get("turn_left_deg", 0) >= LivenessSettings().min_turn_deg:
            assert "planar_motion" in r.reasons
            if share <= 0.25:  # the realistic case is refused by the shape test alone
                assert r.scores["shape_residual"] > LivenessSettings().max_shape_residual


def test_moved_rotated_picture_fails_challenges():
    obs = photo_burst(roll=ramp(30), shift=lambda s: (120 * s, -40 * s), distance=lambda s: 500 - 100 * s)
    for ch in ("turn_left", "turn_right", "look_up", "look_down"):
        assert not assess(obs, ch).passed


def test_picture_of_a_turned_face_is_still_flat():
    obs = photo_burst(head_yaw=25, yaw=ramp(-30))
    assert not assess(obs, "turn_left").passed and not assess(obs, "turn_right").passed


def test_move_closer_is_not_in_the_default_pool():
    obs = photo_burst(distance=lambda s: 600 - 250 * s)
    assert not assess(obs, "move_closer").passed
    assert "move_closer" not in LivenessSettings().allowed_challenges


# --- static feed ------------------------------------------------------------------------------

def test_static_feed():
    obs = photo_burst(noise_px=0.3, thumb_noise=0.3)
    r = assess(obs, "turn_left")
    assert r.reasons[0] == "static_feed"


def test_static_feed_without_thumbnails_uses_landmarks():
    obs = [dataclasses.replace(o, thumb=None) for o in photo_burst(noise_px=0.2)]
    assert "static_feed" in assess(obs, "turn_left").reasons
    obs = [dataclasses.replace(o, thumb=None) for o in head_burst(yaw=ramp(25))]
    assert assess(obs, "turn_left").passed


def test_live_still_head_is_not_static():
    assert "static_feed" not in assess(head_burst(seed=2), "turn_left").reasons


# --- burst sanity -----------------------------------------------------------------------------

def test_too_few_frames():
    r = assess(head_burst(yaw=ramp(25), n=4, fps=2), "turn_left")
    assert "too_few_frames" in r.reasons
    assert assess([], "turn_left").reasons == ["too_few_frames"]


def test_face_lost():
    obs = head_burst(yaw=ramp(25), n=15)
    for i in (1, 3, 5, 7, 9, 11):
        obs[i] = dataclasses.replace(obs[i], box=None, landmarks=None)
    assert "face_lost" in assess(obs, "turn_left").reasons


def test_timestamps():
    obs = head_burst(yaw=ramp(25))
    swapped = list(obs)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    assert "bad_timing" in assess(swapped, "turn_left").reasons
    dup = [dataclasses.replace(o, t_ms=obs[0].t_ms if i == 1 else o.t_ms) for i, o in enumerate(obs)]
    assert "bad_timing" in assess(dup, "turn_left").reasons
    slow = head_burst(yaw=ramp(25), n=15, fps=1.5)  # ~9.3 s, over max_duration and max_gap
    assert "bad_timing" in assess(slow, "turn_left").reasons
    gap = [dataclasses.replace(o, t_ms=o.t_ms + (3000 if i >= 8 else 0)) for i, o in enumerate(obs)]
    assert "bad_timing" in assess(gap, "turn_left").reasons


def test_face_discontinuity():
    obs = head_burst(yaw=ramp(25))
    o = obs[6]
    x, y, w, h = o.box
    moved = {k: (p[0] + 2 * w, p[1]) for k, p in o.landmarks.items()}
    obs[6] = dataclasses.replace(o, box=(x + 2 * w, y, w, h), landmarks=moved)
    assert "face_discontinuity" in assess(obs, "turn_left").reasons


# --- helpers and messages ---------------------------------------------------------------------

def test_pick_challenge():
    # two moves of the four, one turn and one tilt in either order: the 8 sequences, each about 1/8 of the
    # draws (400 of 3200; 300-500 is more than 5 standard deviations either way)
    draws = [pick_challenge() for _ in range(3200)]
    turns, tilts = ("turn_left", "turn_right"), ("look_up", "look_down")
    assert set(draws) == {f"{a}+{b}" for t in turns for u in tilts for a, b in ((t, u), (u, t))}
    assert all(300 <= draws.count(d) <= 500 for d in set(draws))
    # three moves: every sequence with a turn and a tilt (64 less the 8 of turns alone and the 8 of tilts alone)
    rng = random.Random(3)
    assert set(pick_challenge(rng, length=3) for _ in range(2000)) == set(sequences(3))
    assert len(sequences(3)) == 48
    assert all({m[:4] for m in s.split("+")} == {"turn", "look"} for s in sequences(3))
    # one move, or a pool of one kind of move: no such rule
    assert set(sequences(1)) == set(LivenessSettings().allowed_challenges)
    assert pick_challenge(random.Random(1), allowed=["look_down"], length=1) == "look_down"
    assert pick_challenge(allowed=["turn_left"], length=3) == "turn_left+turn_left+turn_left"
    assert set(sequences(2, ["turn_left", "turn_right"])) == {f"{a}+{b}" for a in turns for b in turns}
    assert isinstance(pick_challenge(), str)
    with pytest.raises(ValueError):
        pick_challenge(allowed=["nope"])


def test_every_reason_and_challenge_has_a_message():
    for ch in Challenge:
        assert CHALLENGE_INSTRUCTIONS[ch.value]
    produced = set()
    cases = [(head_burst(), "turn_left"), (head_burst(yaw=ramp(-25)), "turn_left"),
             (photo_burst(yaw=ramp(40), depth_turns=1.0), "turn_left"),
             (photo_burst(noise_px=0.2, thumb_noise=0.2), "turn_left"), ([], "turn_left"), (head_burst(), "x")]
    for obs, ch in cases:
        produced.update(assess(obs, ch).reasons)
    for r in produced | {"face_lost", "bad_timing", "face_discontinuity", "challenge_too_late", "replayed_frame"}:
        assert r in REASON_MESSAGES
    assert "left" in reason_message("challenge_not_performed", "turn_left")


def test_observation_from_analysis():
    rgb = np.zeros((480, 640, 3), np.uint8)
    lm = {"left_eye": (300, 200), "right_eye": (340, 200), "nose": (320, 225),
          "mouth_left": (305, 250), "mouth_right": (335, 250)}
    o = observation_from_analysis(SimpleNamespace(ok=True, box=(280, 160, 80, 110), landmarks=lm), 12.5, 640, 480, rgb)
    assert isinstance(o, FrameObservation) and o.has_face
    assert o.box == (280.0, 160.0, 80.0, 110.0) and o.landmarks["nose"] == (320.0, 225.0)
    assert o.thumb.shape == (32, 32) and o.t_ms == 12.5
    none = observation_from_analysis(SimpleNamespace(ok=False, box=None, landmarks=None), 0, 640, 480)
    assert not none.has_face and none.thumb is None
    partial = observation_from_analysis(SimpleNamespace(box=(1, 2, 3, 4), landmarks={"nose": (1, 1)}), 0, 640, 480)
    assert not partial.has_face


# --- sequences of moves and the cue -------------------------------------------------------------

def two_turns(first: float, second: float):
    """Yaw profile: still, turn to ``first`` degrees, back, turn to ``second``, back."""
    a, b = ramp(first, 0.1, 0.25, 0.4), ramp(second, 0.5, 0.65, 0.8)
    return lambda s: a(s) + b(s)


@pytest.mark.parametrize("first,second,challenge", [
    (25, -25, "turn_left+turn_right"), (-25, 25, "turn_right+turn_left"),
    (25, 25, "turn_left+turn_left"), (-25, -25, "turn_right+turn_right")])
def test_two_move_sequence_passes_only_in_its_order(first, second, challenge):
    obs = head_burst(yaw=two_turns(first, second), n=24)
    r = assess(obs, challenge)
    assert r.passed, r
    assert r.scores["moves_done"] == 2 and r.scores["moves_needed"] == 2
    for other in ("turn_left+turn_right", "turn_right+turn_left", "turn_left+turn_left", "turn_right+turn_right"):
        if other != challenge:
            assert not assess(obs, other).passed, other


def test_one_move_does_not_pass_a_two_move_challenge():
    obs = head_burst(yaw=ramp(25), n=20)
    r = assess(obs, "turn_left+turn_right")
    assert r.reasons == ["challenge_not_performed"] and r.scores["moves_done"] == 1
    r = assess(obs, "turn_right+turn_left")
    assert r.reasons == ["challenge_wrong_direction"] and r.scores["moves_done"] == 0


def test_same_direction_twice_needs_a_return_in_between():
    held = head_burst(yaw=ramp(25, 0.1, 0.3, None), n=24)  # turned once and held
    assert assess(held, "turn_left+turn_left").reasons == ["challenge_not_performed"]


def test_movement_before_the_cue_fails():
    obs = head_burst(yaw=two_turns(25, -25), n=24)  # first turn reached about 0.6 s after the first frame
    assert assess(obs, "turn_left+turn_right", cue_ms=300).passed
    r = assess(obs, "turn_left+turn_right", cue_ms=1500)
    assert r.reasons == ["challenge_too_early"]


def test_flat_picture_fails_the_sequence():
    obs = photo_burst(yaw=two_turns(40, -40), n=24)
    assert not assess(obs, "turn_left+turn_right").passed


def test_live_hints():
    from idp.liveness import hint_message, live_hint
    s = LivenessSettings()
    # turning the wrong way, not far enough, holding the first turn, done
    r = assess(head_burst(yaw=ramp(-9, 0.2, 0.9, None), n=12), "turn_left+turn_right")
    assert live_hint(r, "turn_left+turn_right", s) == "other_way"
    assert hint_message("other_way", "turn_left+turn_right") == "The other way: turn to your left."
    r = assess(head_burst(yaw=ramp(s.min_turn_deg - 2, 0.2, 0.9, None), n=12), "turn_left+turn_right")
    assert live_hint(r, "turn_left+turn_right", s) == "further"
    assert "15 degrees" in hint_message("further", "turn_left+turn_right")
    r = assess(head_burst(yaw=ramp(25, 0.2, 0.6, None), n=12), "turn_left+turn_right")
    assert live_hint(r, "turn_left+turn_right", s) == "back"
    r = assess(head_burst(yaw=two_turns(25, -25), n=24), "turn_left+turn_right")
    assert live_hint(r, "turn_left+turn_right", s) == "done"


def test_sequence_messages_name_the_moves_and_the_minimum_turn():
    from idp.liveness import challenge_instruction
    text = challenge_instruction("turn_left+turn_right")
    assert "left, then to your right" in text and "15 degrees" in text
    assert "15 degrees" in reason_message("challenge_not_performed", "turn_right+turn_left")
    assert "look straight" not in reason_message("challenge_not_performed", "turn_right+turn_left")


def test_the_turn_shown_to_people_is_the_real_turn_the_decision_needs():
    """The landmark yaw reads about 0.82 of a real turn, with a spread (docs/liveness.md, "Yaw: measured
    bias"): the page asks for a real turn whose read reaches min_turn_deg for most people, more than the
    median person needs, not for min_turn_deg itself (which people who turn exactly as asked would then
    rarely reach)."""
    from idp.liveness.core import ASKED_TURN_DEG, MIN_TURN_DEG, YAW_READ_SHARE
    shown = int(min_turn_words().split()[0])
    assert shown == ASKED_TURN_DEG and shown * YAW_READ_SHARE > MIN_TURN_DEG
    assert LivenessSettings.min_turn_deg == MIN_TURN_DEG
    assert f"at least {shown} degrees" in challenge_instruction("turn_right")


# --- a move passes through the angles in between ----------------------------------------------

def _step(peak: float, start: float = 0.3, back: float | None = 0.7):
    """Two pictures of a head, facing and turned (or tilted) by ``peak``, shown in turn: the angle jumps."""
    return lambda s: peak if start < s <= (back if back is not None else 2.0) else 0.0


@pytest.mark.parametrize("challenge, axis, peak", [("turn_left", "yaw", 25), ("turn_right", "yaw", -25),
                                                   ("look_up", "pitch", 22), ("look_down", "pitch", -22)])
def test_a_move_that_jumps_there_and_back_is_not_performed(challenge, axis, peak):
    """Facing and moved pictures of a real head: every frame shows a rigid head, but none the angles in
    between, out or back."""
    for seed in range(5):
        r = assess(head_burst(seed=seed, n=20, **{axis: _step(peak)}), challenge)
        assert r.reasons == ["challenge_not_performed"] and r.scores["move_without_transit"] == 1, (seed, r)


def test_a_quick_turn_counts_once_the_head_comes_back_through_the_angles_in_between():
    """A turn too quick for a frame on the way out, and a return through the angles in between: a person who
    turns fast and comes back towards the camera passes; until the return, the move is not performed yet."""
    def quick_out_slow_back(s):
        return 25.0 if 0.3 < s <= 0.55 else max(0.0, 25.0 * (0.85 - s) / 0.3) if s > 0.55 else 0.0
    burst = head_burst(seed=2, n=20, yaw=quick_out_slow_back)
    assert assess(burst, "turn_left").passed
    from idp.liveness import live_hint
    so_far = assess(burst[:12], "turn_left")
    assert so_far.reasons == ["challenge_not_performed"]
    assert live_hint(so_far, "turn_left") == "back"  # "Good. Now back to the camera."
