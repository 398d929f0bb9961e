"""Reason codes returned by the face engine, each with a human message for the browser.

Codes are stable strings (scripts and the front end match on them); messages
may be reworded freely.
"""
from __future__ import annotations

# --- input ---------------------------------------------------------------------
EMPTY_IMAGE = "empty_image"
UNSUPPORTED_FORMAT = "unsupported_format"
IMAGE_TOO_LARGE = "image_too_large"
TOO_MANY_PIXELS = "too_many_pixels"
CORRUPT_IMAGE = "corrupt_image"
IMAGE_TOO_COMPLEX = "image_too_complex"  # decoding would cost too much (scans, segments, time)
# --- detection ------------------------------------------------------------------
NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
# --- quality --------------------------------------------------------------------
FACE_TOO_SMALL = "face_too_small"
FACE_CUT_OFF = "face_cut_off"
TOO_DARK = "too_dark"
TOO_BRIGHT = "too_bright"
BLURRY = "blurry"
HEAD_TURNED = "head_turned"
HEAD_TILTED = "head_tilted"
# --- enrollment / verification ------------------------------------------------------
NOT_ENOUGH_GOOD_FRAMES = "not_enough_good_frames"
INCONSISTENT_FRAMES = "inconsistent_frames"
NO_USABLE_FRAMES = "no_usable_frames"
BELOW_THRESHOLD = "below_threshold"
REENROLL_REQUIRED = "reenroll_required"
# a template version fused with a second model (dlib) and none of the good frames embedded by it: no decision
SECOND_MODEL_MISSING = "second_model_missing"

REASON_MESSAGES: dict[str, str] = {
    EMPTY_IMAGE: "No image was received.",
    UNSUPPORTED_FORMAT: "The image must be a JPEG or PNG.",
    IMAGE_TOO_LARGE: "The image file is too large.",
    TOO_MANY_PIXELS: "The image has too many pixels.",
    CORRUPT_IMAGE: "The image could not be read.",
    IMAGE_TOO_COMPLEX: "The image is encoded in a way that is too costly to decode. Send an ordinary JPEG or PNG.",
    NO_FACE: "No face found. Look straight at the camera.",
    MULTIPLE_FACES: "More than one face is visible. Make sure you are alone in the picture.",
    FACE_TOO_SMALL: "Your face is too small. Move closer to the camera.",
    FACE_CUT_OFF: "Your face is cut off. Move to the centre of the picture.",
    TOO_DARK: "The picture is too dark. Add some light in front of you.",
    TOO_BRIGHT: "The picture is too bright. Avoid strong light behind or on you.",
    BLURRY: "The picture is blurry. Hold still and check the camera is in focus.",
    HEAD_TURNED: "Turn your head to face the camera.",
    HEAD_TILTED: "Hold your head straight.",
    NOT_ENOUGH_GOOD_FRAMES: "Not enough clear pictures of your face. Please try again.",
    INCONSISTENT_FRAMES: ("The face changed during the capture: the pictures do not all show the same person. "
                          "Please do it again yourself, alone in front of the camera."),
    NO_USABLE_FRAMES: "No clear picture of your face was received. Please try again.",
    BELOW_THRESHOLD: "Your face did not match.",
    REENROLL_REQUIRED: "Your face enrollment is out of date. Please enroll your face again.",
    SECOND_MODEL_MISSING: "No clear picture of your face was received. Please try again.",
}

# Quality reasons the browser can fix by guiding the user, in the order to show them.
GUIDANCE_ORDER = (
    NO_FACE, MULTIPLE_FACES, FACE_CUT_OFF, FACE_TOO_SMALL, TOO_DARK, TOO_BRIGHT,
    HEAD_TURNED, HEAD_TILTED, BLURRY,
)


class FaceError(Exception):
    """Base class of the face engine's errors."""


class FaceInputError(FaceError, ValueError):
    """An input image was rejected; ``reason`` is a code from this module."""

    def __init__(self, reason: str, message: str | None = None):
        self.reason = reason
        self.message = message or REASON_MESSAGES.get(reason, reason)
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"FaceInputError({self.reason!r}, {self.message!r})"


class TemplateTamperedError(FaceError):
    """A stored template failed authentication (altered, moved to another user, or wrong key)."""


class ModelUnavailableError(FaceError):
    """The embedding model's source file is missing or is not the expected file."""
