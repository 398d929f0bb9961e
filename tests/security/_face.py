"""Face fixtures shared by the security tests: those of tests/faceweb (real app, real MongoDB, real face
engine, real photos) and its HTTP relying party, imported here so each test module can use them."""
import io

from PIL import Image, ImageFilter

from faceweb.conftest import (  # noqa: F401
    CSRF_INPUT, CSRF_META, PASSWORD, Browser, cheap_password_hashing, engine, enroll_user, enrolled,
    make_app, new_user, notice_version, people, session_auth,
)
from faceweb.conftest import app  # noqa: F401
from faceweb.test_oidc_face import ACR_PWD, ACR_PWD_FACE, _code, face_rp, live, sign_in  # noqa: F401
from support.oidc import CALLBACK, UserAgent  # noqa: F401

ACR_PWD_OTP = "urn:deepauth:acr:pwd+otp"


def out_of_focus(frames: list[bytes]) -> list[bytes]:
    """A live head filmed out of focus: the landmarks (and the turn) are found, the quality gate fails."""
    out = []
    for f in frames:
        buf = io.BytesIO()
        Image.open(io.BytesIO(f)).filter(ImageFilter.GaussianBlur(6)).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out
