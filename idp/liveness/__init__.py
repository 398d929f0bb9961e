"""Liveness / presentation-attack detection for the webcam face step (pure Python + numpy).

No Flask, no database: the web layer picks a challenge per capture session, runs the face
engine and the dense landmark model (:mod:`.landmarks`, TensorFlow Lite, loaded on first use) on the
burst of frames, converts each result with :func:`observation_from_analysis`, calls :func:`assess`, and stores :func:`frame_fingerprint` values to reject replays
(:func:`fingerprints_match`). See docs/liveness.md.
"""
from .core import (
    CHALLENGE_INSTRUCTIONS,
    CHALLENGE_NOT_PERFORMED_MESSAGES,
    HINT_MESSAGES,
    SEQUENCE_SEP,
    challenge_instruction,
    challenge_moves,
    hint_message,
    live_hint,
    min_turn_words,
    turn_moves,
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
from .fingerprint import (
    PHASH_MAX_DISTANCE,
    frame_fingerprint,
    fingerprints_match,
    perceptual_hash,
    phash_distance,
    thumbnail,
)

__all__ = [
    "CHALLENGE_INSTRUCTIONS",
    "CHALLENGE_NOT_PERFORMED_MESSAGES",
    "HINT_MESSAGES",
    "SEQUENCE_SEP",
    "challenge_instruction",
    "challenge_moves",
    "hint_message",
    "live_hint",
    "min_turn_words",
    "turn_moves",
    "REASON_MESSAGES",
    "Challenge",
    "FrameObservation",
    "LivenessResult",
    "LivenessSettings",
    "PHASH_MAX_DISTANCE",
    "assess",
    "fingerprints_match",
    "frame_fingerprint",
    "observation_from_analysis",
    "perceptual_hash",
    "phash_distance",
    "pick_challenge",
    "reason_message",
    "thumbnail",
]
