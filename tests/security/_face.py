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


def delete_account(db, uid):
    from idp.accounts import users
    assert users.delete_user(db, uid) is not None


def delete_face_data(db, uid):
    from idp.faceweb import erasure
    assert erasure.delete_face_data(db, uid) is not None


def deleted_at(monkeypatch, module, name: str, deletion, db) -> list:
    """Make ``module.name`` (a function taking ``(db, user_id, ...)``) run ``deletion(db, user_id)`` first, the
    first time it is called: a real deletion placed at that point of a request. Returns the list the user id
    is appended to when it ran."""
    real, ran = getattr(module, name), []

    def with_deletion(db_, user_id, *args, **kw):
        if not ran:
            ran.append(user_id)
            deletion(db, user_id)
        return real(db_, user_id, *args, **kw)
    monkeypatch.setattr(module, name, with_deletion)
    return ran


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


#: the frame spacing of the attackers' clients below (7.5 frames per second)
ATTACK_FRAME_MS = 1000.0 / 7.5


def move_due(answers: list[dict], done_moves: int) -> str | None:
    """The move an attacker's page performs next: the next one shown (a sign-in shows them one at a time, an
    enrollment all at once) once its cue has passed by 400 ms and the server asks for no return first; or None."""
    live = answers[-1].get("liveness", {}) if answers else {}
    moves = live.get("moves") or []
    if len(moves) > done_moves and live.get("elapsed_ms", 0) >= (live.get("cue_ms") or 0) + 400 \
            and live.get("hint") != "back":
        return moves[done_moves]
    return None


def send_frames(b, cap: dict, next_frame, t0: float, limit: int = 80) -> list[dict]:
    """An attacker's client: frame after frame ``next_frame(answers, k) -> (jpeg, pause_ms)`` sent to the capture
    ``cap`` at ``ATTACK_FRAME_MS`` plus the pause, each answered 200, until the server says done or ``limit``
    frames; the answers."""
    answers, k, t = [], 0, t0
    while k < limit:
        data, pause = next_frame(answers, k)
        t += pause
        r = b.api(cap["frames_url"], data=data, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(t)})
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        k, t = k + 1, t + ATTACK_FRAME_MS
        if answers[-1]["done"]:
            break
    return answers


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


def enrolled_and_signing_in(live_app, new_user, frames):
    """``(app, db, uid, browser)``: alice enrolled from ``frames`` on an app whose challenge is turn_left, then
    signed in with her password in a fresh browser (the face step ahead)."""
    from faceweb.test_liveness_web import enroll_with

    from idp import get_db
    app = live_app("turn_left")
    enroll_with(app, new_user, frames)
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    return app, db, db.users.find_one({"username": "alice"})["_id"], b


def owner_signing_in(make_app, new_user, faces_dir, d3_turn_left):
    """The owner (enrolled with d3's left turn from 7.2 s) signed in with the password on a server that asks
    for ``turn_left+turn_right``: ``(db, browser, d3's frames from 4.0 s, an open capture whose cue is pinned
    at 300 ms)``."""
    from faceweb.test_liveness_web import clip_frames, enroll_with

    from idp import get_db
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left+turn_right")
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    frames = clip_frames(faces_dir, "d3", 4.0, 4.0)
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    return db, b, frames, cap


class PageQueue:
    """A page's frames as the late-move credit must see them: the queue in front of the server a page filming
    every interval would have, from the server's own times on the frames it answered (``queue``, ms), and,
    once an answer shows the next move, the delay of that answer those times explain (``explained``)."""

    def __init__(self):
        self.answers: list[dict] = []
        self.queue = 0.0
        self.explained: float | None = None

    def answered(self, r, took_ms: float) -> bool:
        """Take the answer ``r`` to a frame the server was on for ``took_ms``; True when the page stops sending
        here: the next move shown, the capture done, or the frame refused as a replay (the clip ran out)."""
        from idp.faceweb.liveness import INTERVAL_MS
        if r.status_code == 409 and r.get_json().get("error") == "replayed_frame":
            return True
        assert r.status_code == 200, r.get_json()
        self.answers.append(r.get_json())
        if len(self.answers[-1]["liveness"]["moves"]) == 2:
            self.explained = self.queue + took_ms
            return True
        if self.answers[-1]["done"]:
            return True
        self.queue = max(0.0, self.queue + took_ms - INTERVAL_MS)
        return False


def consented_browser(app, name):
    """A browser signed in with ``name``'s password, the demo client's consent given."""
    b = Browser(app)
    b.login(name)
    b.consent()
    return b
