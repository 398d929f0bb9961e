"""The biometric core: face detection, quality checks, embeddings, enrollment and verification.

No web framework here; the hosted pages call this package. Importing it is
cheap: TensorFlow and the models load on the first ``get_engine(data_dir)`` /
``FaceEngine(...)``.
"""
from __future__ import annotations

from . import settings
from .imageio import decode_image
from .reasons import *  # noqa: F401,F403 - reason-code constants
from .reasons import REASON_MESSAGES, FaceError, FaceInputError, ModelUnavailableError, TemplateTamperedError
from .template import Template, TemplateCipher

_LAZY = {"FaceEngine", "FrameAnalysis", "EnrollmentResult", "VerificationResult", "get_engine"}


def __getattr__(name):  # PEP 562: import the engine (and TensorFlow, lazily) only when asked for
    if name in _LAZY:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)


__all__ = [
    "FaceEngine", "FrameAnalysis", "EnrollmentResult", "VerificationResult", "get_engine",
    "FaceError", "FaceInputError", "ModelUnavailableError", "TemplateTamperedError",
    "decode_image", "Template", "TemplateCipher", "REASON_MESSAGES", "settings",
]
