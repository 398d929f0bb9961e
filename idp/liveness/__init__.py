"""Liveness / presentation-attack detection for the webcam face step (pure Python + numpy).

No Flask, no database: the web layer picks a challenge per capture session, runs the face
engine and the dense landmark model (:mod:`.landmarks`, TensorFlow Lite, loaded on first use) on the
burst of frames, stores each frame's landmarks, rebuilds the burst as :class:`FrameObservation` objects
(``idp.faceweb.liveness.observations``), and after every frame calls :func:`decide_capture` (the one
decision: :func:`assess` on the burst - a list of checks, :data:`CHECKS` - then the capture's own
counters: in-session duplicates, near copies of earlier accepted frames; whether to stop filming,
accept, or count a failure). See docs/liveness.md.
"""
from .core import (
    ATTACK_REASONS,
    CAPTURE_CHECKS,
    CHECKS,
    FINAL_REASONS,
    CaptureDecision,
    CaptureState,
    capture_window_ms,
    decide_capture,
    CHALLENGE_INSTRUCTIONS,
    CHALLENGE_NOT_PERFORMED_MESSAGES,
    HINT_MESSAGES,
    MEASURED_MOVES,
    TILT_HINT_MESSAGES,
    SEQUENCE_SEP,
    challenge_instruction,
    challenge_moves,
    challenge_pool,
    hint_message,
    live_hint,
    head_moves,
    min_pitch_words,
    min_turn_words,
    REASON_MESSAGES,
    Challenge,
    FrameObservation,
    LivenessResult,
    LivenessSettings,
    assess,
    observation_from_analysis,
    pick_challenge,
    reason_message,
)
from .fingerprint import thumbnail

__all__ = [
    "ATTACK_REASONS",
    "CAPTURE_CHECKS",
    "CHECKS",
    "FINAL_REASONS",
    "CaptureDecision",
    "CaptureState",
    "capture_window_ms",
    "decide_capture",
    "CHALLENGE_INSTRUCTIONS",
    "CHALLENGE_NOT_PERFORMED_MESSAGES",
    "HINT_MESSAGES",
    "MEASURED_MOVES",
    "TILT_HINT_MESSAGES",
    "SEQUENCE_SEP",
    "challenge_instruction",
    "challenge_moves",
    "challenge_pool",
    "hint_message",
    "live_hint",
    "head_moves",
    "min_pitch_words",
    "min_turn_words",
    "REASON_MESSAGES",
    "Challenge",
    "FrameObservation",
    "LivenessResult",
    "LivenessSettings",
    "assess",
    "observation_from_analysis",
    "pick_challenge",
    "reason_message",
    "thumbnail",
]
