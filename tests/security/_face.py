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


def still_frame(image: bytes, k: int) -> bytes:
    """The picture again as a new frame: another JPEG quality, moved by a pixel now and then (what a still
    picture filmed or injected frame after frame looks like to the replay stores)."""
    img = Image.open(io.BytesIO(image)).convert("RGB")
    if k % 2:
        img = img.transform(img.size, Image.AFFINE, (1, 0, (k % 3) - 1, 0, 1, 0))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=78 + k % 17)
    return buf.getvalue()


def two_move_sign_in(make_app, new_user, enrolled_turn):
    """``(app, db, browser, capture)``: alice enrolled from ``enrolled_turn`` (a one-move capture), then signed in
    with her password on an app whose challenge is turn_left+turn_right, her verify capture started."""
    from faceweb.test_liveness_web import enroll_with

    from idp import get_db
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, enrolled_turn)
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left+turn_right")
    b = Browser(app)
    b.login("alice")
    return app, get_db(app), b, b.start("verify").get_json()
