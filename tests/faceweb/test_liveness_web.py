"""Liveness at enrollment and sign-in, through the capture API with the real face engine.

Bona fide: frames of the shared clip d3 from 7.2 s (the person faces the camera, then turns to their
left), extracted with ffmpeg at 7.5 fps, 640 px wide, sent with their capture times. Attacks: a still
photo fed repeatedly (small shifts, slightly different JPEG re-encodes), and frames replayed from an
earlier capture session.
"""
from __future__ import annotations

import io
import shutil
import subprocess

import pytest
from PIL import Image, ImageOps

from idp import get_config, get_db
from idp.config import Config
from idp.liveness import (
    CHALLENGE_INSTRUCTIONS,
    REASON_MESSAGES,
    challenge_instruction,
    min_pitch_words,
    min_turn_words,
    reason_message,
    sequences,
)

from .conftest import Browser

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

FPS = 7.5
T0 = 1_750_000_000_000.0  # client capture clock (ms) of a burst's first frame


def clip_frames(faces_dir, name: str, start: float, seconds: float, fps: float = FPS) -> list[bytes]:
    """JPEG frames of a shared clip, as a camera page would send them (640 px wide)."""
    src = faces_dir / "video" / "liveportrait_driving" / f"{name}.mp4"
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", str(start), "-i", str(src), "-t", str(seconds),
                          "-an", "-vf", f"fps={fps},scale=640:-2", "-q:v", "3", "-f", "image2pipe", "-vcodec", "mjpeg",
                          "-"], check=True, capture_output=True, timeout=120).stdout
    parts, i = [], 0
    while (s := out.find(b"\xff\xd8", i)) >= 0:
        e = out.find(b"\xff\xd9", s)
        parts.append(out[s:e + 2])
        i = e + 2
    return parts


def held_still(image: Image.Image, count: int = 16, shift: bool = False) -> list[bytes]:
    """A photo in front of the camera: the same picture on a 640x480 frame, re-encoded at a slightly
    different JPEG quality each time and, with ``shift``, moved by a pixel each way (a hand-held photo)."""
    photo = image.convert("RGB")
    photo = photo.resize((int(photo.width * 360 / photo.height), 360))
    frames = []
    for k in range(count):
        canvas = Image.new("RGB", (640, 480), (118, 124, 120) if shift else (120, 120, 126))
        dx, dy = ((k % 3) - 1, ((k // 3) % 3) - 1) if shift else (0, 0)
        canvas.paste(photo, ((640 - photo.width) // 2 + dx, 60 + dy))
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=80 + k % 16)
        frames.append(buf.getvalue())
    return frames


@pytest.fixture(scope="module")
def d3_turn_left(faces_dir) -> list[bytes]:
    frames = clip_frames(faces_dir, "d3", 7.2, 2.5)
    assert len(frames) >= 15
    return frames


@pytest.fixture(scope="module")
def d3_turn_left_other(faces_dir) -> list[bytes]:
    """Other frames of d3 with another (smaller) left turn, from 3.0 s (for a sign-in after enrolling
    with the first burst)."""
    return clip_frames(faces_dir, "d3", 3.0, 2.5)


@pytest.fixture
def live_app(make_app):
    def factory(challenge: str | None = "turn_left", **kw):
        return make_app(liveness_enabled=True, liveness_challenges=challenge or "", **kw)
    return factory


def send_burst(b: Browser, purpose: str, frames: list[bytes], *, fps: float = FPS, t0: float = T0):
    """What face-capture.js does with a challenge: start, send the filmed frames with their capture
    times until the server says done, finish. Returns (start answer, frame answers, finish response)."""
    resp = b.start(purpose)
    assert resp.status_code == 201, resp.get_json()
    cap = resp.get_json()
    answers = []
    for k, image in enumerate(frames):
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(t0 + k * 1000.0 / fps)})
        assert r.status_code == 200, r.get_json()
        answers.append(r.get_json())
        if answers[-1]["done"]:
            break
    return cap, answers, b.finish(cap)


def shown(answers: list[dict]) -> dict:
    """The liveness part of the first frame answer that showed the capture's moves (its first frame with a
    usable face): challenge, moves, instruction, cue."""
    return next(a["liveness"] for a in answers if a.get("liveness", {}).get("challenge"))


def reveal(b: Browser, purpose: str, image: bytes, quality: int = 90) -> tuple[dict, dict]:
    """Start a capture and send one frame with a face (re-encoded at ``quality``: each capture needs new
    pixels): (start answer, the liveness part of its answer)."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(image)).save(buf, "JPEG", quality=quality)
    image = buf.getvalue()
    cap = b.start(purpose).get_json()
    r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    assert r.status_code == 200, r.get_json()
    return cap, r.get_json()["liveness"]


def signed_in(app, new_user, name="alice", consent=True) -> Browser:
    new_user(name)
    b = Browser(app)
    b.login(name)
    if consent:
        b.consent()
    return b


def enroll_with(app, new_user, frames, name="alice") -> Browser:
    b = signed_in(app, new_user, name)
    _, _, fin = send_burst(b, "enroll", frames)
    assert fin.status_code == 200 and fin.get_json()["ok"], fin.get_json()
    return b


# --------------------------------------------------------------------------- configuration

def test_liveness_is_on_by_default_with_an_unpredictable_sequence_of_moves(make_app, new_user, d3_turn_left):
    assert Config().liveness_enabled is True and Config().liveness_challenges == ""
    assert Config.from_env({"IDP_LIVENESS_ENABLED": "false"}).liveness_enabled is False
    assert Config.from_env({"IDP_LIVENESS_CHALLENGES": "turn_right"}).liveness_challenges == "turn_right"
    # The defaults of Config (only the test database and the shared model dir differ).
    app = make_app(liveness_enabled=Config().liveness_enabled, liveness_challenges=Config().liveness_challenges)
    b = signed_in(app, new_user)
    seen = set()
    for k in range(12):
        cap, live = reveal(b, "enroll", d3_turn_left[0], quality=70 + k)
        assert cap["liveness"] is True and cap["moves_needed"] == 2
        # two head moves, a turn and a tilt in either order: 8 sequences, shown with the first frame with a face
        assert live["challenge"] in sequences(2) and {m[:4] for m in live["moves"]} == {"turn", "look"}
        assert live["moves"] == live["challenge"].split("+")
        assert live["instruction"] == challenge_instruction(live["challenge"])
        for m in live["moves"]:  # the real angle each kind of move takes
            assert (min_turn_words() if m.startswith("turn") else min_pitch_words()) in live["instruction"]
        assert 200 <= cap["cue_ms"] <= 500  # the cue appears at an unpredictable moment within 0.5 s
        assert live["cue_ms"] == cap["cue_ms"]  # (the face was there from the first frame)
        assert cap["window_ms"] and cap["max_frames"] >= 20
        doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
        assert doc["challenge"] == live["challenge"] and doc["cue_ms"] == cap["cue_ms"]
        seen.add(live["challenge"])
    assert len(seen) >= 2  # 12 draws of 8: one value only with probability 8**-11
    # The page shows the instruction in an aria-live element.
    page = b.get("/face/enroll").text
    assert 'id="challenge"' in page and 'aria-live="assertive"' in page


def test_a_pinned_sequence_is_kept(make_app, new_user, d3_turn_left):
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left+turn_right")
    b = signed_in(app, new_user)
    _, live = reveal(b, "enroll", d3_turn_left[0])
    assert live["challenge"] == "turn_left+turn_right" and live["moves"] == ["turn_left", "turn_right"]
    # IDP_LIVENESS_MOVES: the length of the random sequences (3 moves: 48 sequences)
    assert Config.from_env({"IDP_LIVENESS_MOVES": "3"}).liveness_moves == 3 and Config().liveness_moves == 2
    b3 = signed_in(make_app(liveness_enabled=True, liveness_moves=3), new_user, "bob")
    cap, live = reveal(b3, "enroll", d3_turn_left[0], quality=85)
    assert cap["moves_needed"] == 3 and len(live["moves"]) == 3
    with pytest.raises(SystemExit, match="configuration error: IDP_LIVENESS_CHALLENGES: unknown challenge 'turn_left\\+wink'"):
        make_app(liveness_challenges="turn_left+wink")


def test_unknown_challenge_in_configuration_fails_at_start(make_app):
    with pytest.raises(SystemExit, match="configuration error: IDP_LIVENESS_CHALLENGES: unknown challenge 'wink'"):
        make_app(liveness_challenges="turn_left,wink")


# --------------------------------------------------------------------------- enrollment

def test_live_turn_passes_enrollment_when_it_is_the_challenge(live_app, new_user, d3_turn_left):
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    cap, answers, fin = send_burst(b, "enroll", d3_turn_left)
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is True, body
    assert shown(answers)["challenge"] == "turn_left"
    assert shown(answers)["instruction"] == CHALLENGE_INSTRUCTIONS["turn_left"]
    # The server said "done" once the turn was seen with enough good frames (before the clip's end).
    assert answers[-1]["done"] and answers[-1]["liveness"]["passed"]
    assert len(answers) < len(d3_turn_left)
    # the progress is the challenge's (moves), the guidance names the move, never a generic "Good"
    assert answers[0]["liveness"]["moves_done"] == 0 and answers[-1]["liveness"]["moves_done"] == 1
    assert all("Keep following" not in a["message"] for a in answers), [a["message"] for a in answers]
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    assert db.face_templates.count_documents({"_id": uid}) == 1
    entry = db.audit_log.find_one({"event": "face.enroll", "user_id": uid})
    assert entry["decision"] == "enrolled"
    assert entry["details"]["liveness_passed"] is True and entry["details"]["liveness_challenge"] == "turn_left"
    assert entry["details"]["liveness_reasons"] == []
    # After the finish: no embeddings, no thumbnail, no image; fingerprints are hashes only.
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["status"] == "finished" and "lv_ref_thumb" not in doc
    assert not any("emb" in f for f in doc["frames"])
    assert all(isinstance(f["t_ms"], float) for f in doc["frames"])
    prints = list(db.liveness_frames.find({"capture_id": cap["capture_id"]}))
    assert len(prints) == len(answers)
    assert all(set(p) == {"_id", "fingerprint", "capture_id", "user_id", "created", "expires"}
               and len(p["fingerprint"]) == 64 and p["user_id"] == uid for p in prints)


def test_same_turn_fails_when_the_other_turn_was_asked(live_app, new_user, d3_turn_left):
    app = live_app("turn_right")
    b = signed_in(app, new_user)
    cap, answers, fin = send_burst(b, "enroll", d3_turn_left)
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    # the wrong way is final: the answer to the frame that showed it ends the capture (failure reported
    # at once, not at the end of the window), and the frames before it said which way to turn
    assert answers[-1]["done"] and not answers[-1]["liveness"]["passed"] and answers[-1]["liveness"]["final"]
    assert len(answers) < len(d3_turn_left), len(answers)
    assert any(a["liveness"]["hint"] == "other_way" and a["message"] == "The other way: turn to your right."
               for a in answers[:-1]), [a["message"] for a in answers]
    assert all(a["liveness"]["moves_done"] == 0 and a["liveness"]["moves_needed"] == 1 for a in answers)
    assert body["liveness"] == {"passed": False, "reasons": ["challenge_wrong_direction"], "challenge": "turn_right"}
    assert body["message"] == reason_message("challenge_wrong_direction", "turn_right")
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    assert db.face_templates.count_documents({"_id": uid}) == 0
    entry = db.audit_log.find_one({"event": "face.enroll", "user_id": uid})
    assert entry["decision"] == "rejected" and entry["reasons"] == ["challenge_wrong_direction"]
    assert entry["details"]["liveness_passed"] is False and entry["details"]["liveness_challenge"] == "turn_right"


@pytest.mark.slow
def test_still_photo_fails_enrollment(live_app, new_user, people):
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    photo = Image.open(io.BytesIO(people["mallory"][0]))  # a colour-LFW photo that passes the quality checks
    # Held still, only re-encoded: a static feed.
    frames = held_still(photo, 16)
    assert len(set(frames)) == len(frames)  # every frame's bytes differ (no trivially equal frames)
    cap, answers, fin = send_burst(b, "enroll", frames)
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert sum(a["ok"] for a in answers) >= 5, [a["reasons"] for a in answers]  # a good face picture
    assert body["liveness"]["passed"] is False and body["liveness"]["reasons"][0] == "static_feed", body
    assert body["message"] == REASON_MESSAGES["static_feed"]
    # Moved by a pixel each way between frames (more than the static-feed threshold allows for): the
    # picture moves, but a flat picture cannot turn its head.
    cap, answers, fin = send_burst(b, "enroll", held_still(photo, 16, shift=True))
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert body["liveness"]["passed"] is False and body["liveness"]["reasons"] == ["challenge_not_performed"]
    assert body["message"] == reason_message("challenge_not_performed", "turn_left")
    assert "turn your head to the left" in body["message"]
    db = get_db(app)
    assert db.face_templates.count_documents({}) == 0
    assert [e["reasons"][0] for e in db.audit_log.find({"event": "face.enroll"}).sort("at", 1)] == [
        "static_feed", "challenge_not_performed"]


# --------------------------------------------------------------------------- sign-in

@pytest.fixture
def enrolled_d3(live_app, new_user, d3_turn_left):
    """alice enrolled with the live d3 burst (challenge turn_left); returns (app, uid)."""
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    return app, get_db(app).users.find_one({"username": "alice"})["_id"]


@pytest.mark.slow
def test_sign_in_live_turn_passes_and_still_photo_fails(enrolled_d3, d3_turn_left_other, faces_dir):
    app, uid = enrolled_d3
    db = get_db(app)
    # A still photo of the enrolled person (one frame of the clip, held still): refused, and counted.
    still = Image.open(io.BytesIO(clip_frames(faces_dir, "d3", 1.0, 0.2)[0]))
    b = Browser(app)
    b.login("alice")
    cap, answers, fin = send_burst(b, "verify", held_still(still, 16, shift=True))
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert body["liveness"]["passed"] is False and body["liveness"]["reasons"][0] in ("static_feed",
                                                                                      "challenge_not_performed")
    assert body["message"].startswith(reason_message(body["liveness"]["reasons"][0], "turn_left"))
    assert "4 more attempts" in body["message"]
    assert "score" not in body
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid})
    assert entry["decision"] == "liveness_failed" and entry["score"] is None
    assert entry["details"]["liveness_reasons"] == body["liveness"]["reasons"] and entry["details"]["failures"] == 1
    assert b.get("/account").headers["Location"].endswith("/face/verify")  # still behind the face step

    # The live person turning left (other frames than at enrollment): passes, on those frames.
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is True, body
    assert b.get("/account").status_code == 200
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid, "decision": "match"})
    assert entry["details"]["liveness_passed"] is True and entry["details"]["liveness_challenge"] == "turn_left"
    assert db.face_status.find_one({"_id": uid})["failures"] == 0
    # the failure kept the pending challenge; the match used it up (the next capture draws again)
    assert "pending_challenge" not in db.face_status.find_one({"_id": uid})


# --------------------------------------------------------------------------- replay

def test_frame_from_an_earlier_capture_is_rejected(enrolled_d3, d3_turn_left):
    app, uid = enrolled_d3
    db = get_db(app)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    # A frame of the enrollment burst (an intercepted upload) sent again at sign-in.
    r = b.api(cap["frames_url"], data=d3_turn_left[1], content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    body = r.get_json()
    assert r.status_code == 409 and body["error"] == "replayed_frame"
    assert body["message"] == REASON_MESSAGES["replayed_frame"]
    # The capture is over, and the attempt counted as a failed face check.
    assert b.finish(cap).status_code == 409
    assert db.capture_sessions.find_one({"_id": cap["capture_id"]})["status"] == "finished"
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid})
    assert entry["decision"] == "liveness_failed" and entry["reasons"] == ["replayed_frame"]
    # The same picture re-encoded is other pixels: one near copy alone does not refuse a capture (the
    # perceptual store needs FACE_HASH_MIN_FRAMES of them, see the tests below).
    img = Image.open(io.BytesIO(d3_turn_left[1]))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    cap = b.start("verify").get_json()
    r = b.api(cap["frames_url"], data=buf.getvalue(), content_type="image/jpeg",
              headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0)})
    assert r.status_code == 200, r.get_json()


def _two_people_open_with(app, new_user, face_frame: bytes, openers: list[bytes]) -> list[tuple[dict, list]]:
    """alice's, then bob's enrollment capture, each sending ``openers`` (PNG) then its own re-encoding of
    ``face_frame``; every frame must be answered 200. Returns (capture document, answers) per person."""
    out = []
    for k, name in enumerate(("alice", "bob")):
        b = signed_in(app, new_user, name)
        cap = b.start("enroll").get_json()
        face = io.BytesIO()
        Image.open(io.BytesIO(face_frame)).save(face, "JPEG", quality=90 - k)  # each capture its own pixels
        answers = []
        for i, image in enumerate([*openers, face.getvalue()]):
            r = b.api(cap["frames_url"], data=image, content_type="image/jpeg" if i == len(openers) else "image/png",
                      headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + i * 1000.0 / FPS)})
            assert r.status_code == 200, (name, i, r.get_json())
            answers.append(r.get_json())
        out.append((get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]}), answers))
    return out


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_frames_of_one_colour_are_no_replay(live_app, new_user, d3_turn_left):
    """A frame of one colour (a camera starting up, a closed privacy shutter, a page that filmed before the
    camera's first picture) is the same for every camera: two people's captures that both start with black
    frames go on, and each shows its moves at the first face after them. The replay store keeps none of
    them, and they are no repeat within the capture (no static feed from a slow camera start)."""
    black = _png(Image.new("RGB", (640, 480)))
    app = live_app("turn_left")
    for doc, answers in _two_people_open_with(app, new_user, d3_turn_left[0], [black, black]):
        assert [a["liveness"]["challenge"] for a in answers] == [None, None, "turn_left"], answers
        assert not doc.get("lv_dups") and not any(f.get("dup") for f in doc["frames"])
    assert get_db(app).liveness_frames.count_documents({}) == 2  # the two face frames


def test_the_same_picture_without_a_face_is_no_replay(live_app, new_user, d3_turn_left):
    """A picture with no face in it that another capture sent first (a virtual camera's placeholder, the
    same for every camera of its kind, or one an attacker sent to get there first) is no replay: it is
    evidence of nothing, so the capture goes on (a replay closes it, and at sign-in counts a failure). The
    same pixels with a face stay a replay (``test_frame_from_an_earlier_capture_is_rejected``)."""
    import numpy as np
    pattern = np.random.default_rng(5).integers(0, 255, (480, 640, 3), dtype=np.uint8)  # not one colour
    app = live_app("turn_left")
    for doc, answers in _two_people_open_with(app, new_user, d3_turn_left[0], [_png(Image.fromarray(pattern))]):
        assert [a["liveness"]["challenge"] for a in answers] == [None, "turn_left"], answers
        assert doc["status"] != "finished"


def test_duplicates_within_a_capture_count_as_a_static_feed(live_app, new_user, d3_turn_left):
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    frames = [d3_turn_left[0], d3_turn_left[1]] * 6  # a two-frame loop: the same pixels again and again
    cap, answers, fin = send_burst(b, "enroll", frames)
    assert all(a["done"] is False for a in answers[:-1])
    body = fin.get_json()
    assert body["ok"] is False and body["liveness"]["reasons"][0] == "static_feed", body
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["lv_dups"] == len(frames) - 2 and sum(1 for f in doc["frames"] if f.get("dup")) == len(frames) - 2


# --------------------------------------------------------------------------- perceptual replay store

def _transformed(frames: list[bytes], how: str) -> list[bytes]:
    out = []
    for data in frames:
        img = Image.open(io.BytesIO(data)).convert("RGB")
        quality = 90
        if how.startswith("jpeg"):
            quality = int(how[4:])
        elif how.startswith("scale"):
            f = int(how[5:]) / 100
            img = img.resize((round(img.width * f), round(img.height * f)), Image.BILINEAR)
        elif how == "shift":
            canvas = Image.new("RGB", img.size, (0, 0, 0))
            canvas.paste(img, (12, 8))
            img = canvas
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


TRANSFORMS = ["jpeg60", "jpeg95", "scale90", "scale110", "shift"]


@pytest.mark.slow
def test_near_copies_of_accepted_frames_are_refused_and_a_fresh_capture_passes(live_app, new_user, d3_turn_left,
                                                                               d3_turn_left_other):
    """alice enrolls with d3 (7.2 s); each transformed copy of those frames, sent in a new sign-in capture,
    is refused as a replay before the burst ends; a fresh genuine burst of the same person then passes."""
    from idp.faceweb import liveness as web_liveness
    app = live_app("turn_left", face_free_failures=len(TRANSFORMS) + 1)
    enroll_with(app, new_user, d3_turn_left)
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    stored = db.liveness_face_hashes.count_documents({"user_id": uid})
    assert stored >= 6 and all(len(d["hash"]) == 64 for d in db.liveness_face_hashes.find({"user_id": uid}))
    b = Browser(app)
    b.login("alice")
    for k, how in enumerate(TRANSFORMS):
        cap = b.start("verify").get_json()
        copies = _transformed(d3_turn_left, how)
        statuses = []
        for i, image in enumerate(copies):
            r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                      headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + i * 1000.0 / FPS)})
            statuses.append(r.status_code)
            if r.status_code != 200:
                break
        assert statuses[-1] == 409 and r.get_json()["error"] == "replayed_frame", (how, statuses)
        assert len(statuses) <= stored, (how, statuses)  # refused among the copies of the stored frames
        assert db.face_status.find_one({"_id": uid})["failures"] == k + 1
    # the refused captures' frames joined the store as failed ones; the accepted ones are as they were
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": {"$ne": True}}) == stored
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": True}) > 0
    # the same person, a new genuine capture: accepted, and its hashes are kept too
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    assert all(a["liveness"]["moves_needed"] == 1 for a in answers)
    doc = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc.get("lv_near", 0) < web_liveness.FACE_HASH_MIN_FRAMES
    assert db.liveness_face_hashes.count_documents({"user_id": uid, "failed": {"$ne": True}}) > stored


def test_replay_store_digest_is_stable():
    """The replay store's key must not change: entries stored before keep matching. The value is the one
    every stored entry has had (the sha256 part of the earlier "v1:<phash>:<sha256>" frame fingerprint)."""
    import numpy as np

    from idp.faceweb.liveness import exact_fingerprint

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert exact_fingerprint(rgb) == "d47f84c234d8657224dc50b2d7137413d43ee52616a74d4446f6c12236ff01ce"
    assert exact_fingerprint(rgb) != exact_fingerprint(rgb[:, ::-1])


def test_no_match_after_a_turn_does_not_ask_to_look_straight_at_the_camera(live_app, new_user, d3_turn_left,
                                                                          people, engine):
    """Somebody else performs the turn well: the liveness checks pass, the face does not match, and the
    message does not ask to "look straight at the camera" (the frames were turned on purpose)."""
    from idp.face.repository import save_template
    from idp.face.template import TemplateCipher
    from idp.faceweb import notice

    app = live_app("turn_left")
    user = new_user("alice")
    db = get_db(app)
    result = engine.enroll(people["mallory"])
    assert result.ok, result.reasons
    notice.record_consent(db, user["_id"])
    save_template(db, user["_id"], result.template, TemplateCipher(get_config(app).template_key))
    b = Browser(app)
    b.login("alice")
    _, answers, fin = send_burst(b, "verify", d3_turn_left)
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert body.get("liveness") is None and body["reasons"], body  # judged by the face match
    assert body["message"].startswith("Your face did not match."), body
    assert "look straight" not in body["message"].lower(), body


def test_live_hints_name_the_problem():
    """While a turn challenge is filmed, the guidance names what to fix: a quality problem the person can
    fix first ("come closer"), a turned head before the cue ("face the camera first"), else the
    challenge's hint."""
    from idp.face import REASON_MESSAGES
    from idp.faceweb.capture import _live_guidance

    live = {"challenge": "turn_left", "moves_done": 0, "before_cue": True, "hint_message": "Turn your head to your left."}
    assert _live_guidance(["head_turned"], live) == "Face the camera first."
    assert _live_guidance(["face_too_small", "head_turned"], live) == REASON_MESSAGES["face_too_small"]
    after_cue = {**live, "before_cue": False, "hint_message": "The other way: turn to your left."}
    assert _live_guidance(["head_turned"], after_cue) == "The other way: turn to your left."
    # no face found yet (the moves are not shown): the problem, else where to look
    unshown = {"challenge": None, "moves_done": 0, "before_cue": True, "hint_message": None}
    assert _live_guidance(["no_face"], unshown) == REASON_MESSAGES["no_face"]
    assert _live_guidance([], unshown) == "Look at the camera."


def test_liveness_stream_that_never_passes_the_quality_gate_ends_with_the_quality_reason(live_app, new_user,
                                                                                        monkeypatch):
    """With a turn challenge, a camera whose frames never pass the quality gate (no face: distinct noise
    frames, so not a frozen feed) ends with the quality reason, not "Too many pictures", and is not
    counted as a liveness failure."""
    import numpy as np

    from idp.face import REASON_MESSAGES
    from idp.faceweb import capture_sessions

    monkeypatch.setattr(capture_sessions, "MAX_FRAMES_PER_CAPTURE", 8)
    app = live_app("turn_left")
    b = signed_in(app, new_user)
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(8):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(buf, "JPEG", quality=85)
        frames.append(buf.getvalue())
    _, answers, fin = send_burst(b, "enroll", frames)
    assert answers[-1]["done"] and len(answers) == 8, [a["done"] for a in answers]
    body = fin.get_json()
    assert fin.status_code == 200 and body["ok"] is False, body
    assert "no_face" in body["reasons"] and body.get("liveness") is None, body
    assert REASON_MESSAGES["no_face"] in body["message"] and "Too many" not in body["message"], body


# --------------------------------------------------------------------------- passive signal (MiniFASNet)

def test_passive_signal_scores_the_first_face_frames_and_takes_part_in_the_decision(live_app, new_user,
                                                                                      d3_turn_left, faces_dir):
    """With the passive check on (the default), the capture stores MiniFASNet's score for every face
    frame, a live turn passes with them, and the decision uses them: a
    tablet replay is refused with ``passive_spoof`` among its reasons. With the check off, no frame is
    scored. (The live clip is sent twice: the replay store is emptied in between, as if freshly filmed.)"""
    def forget_frames(app):
        get_db(app).liveness_frames.delete_many({})
        get_db(app).liveness_face_hashes.delete_many({})

    app = live_app("turn_left")
    b = signed_in(app, new_user)
    cap, answers, fin = send_burst(b, "enroll", d3_turn_left)
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    scored = [f["ps"] for f in doc["frames"] if "ps" in f]
    assert len(scored) == sum(1 for f in doc["frames"] if (f.get("quality") or {}).get("face_px")), scored
    assert all(0.1 <= s <= 1.0 for s in scored), scored
    assert doc["lv_passive_min"] == 0.1

    # A photo of a face shown on a tablet (upstream's labelled sample), held with tremor: refused, and
    # the passive signal is among the reasons (the burst checks alone would say only "static"/"planar").
    sample = faces_dir / "spoof_samples_minivision" / "fake" / "image_F2.jpg"
    b = signed_in(app, new_user, name="bob")
    _, _, fin = send_burst(b, "enroll", held_still(ImageOps.exif_transpose(Image.open(sample)).convert("RGB"),
                                                   shift=True))
    body = fin.get_json()
    assert body["ok"] is False and "passive_spoof" in body["liveness"]["reasons"], body

    forget_frames(app)
    off = live_app("turn_left", liveness_passive_min_score=0.0)
    b = signed_in(off, new_user, name="carol")
    cap, _, fin = send_burst(b, "enroll", d3_turn_left)
    assert fin.get_json()["ok"] is True
    doc = get_db(off).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert not any("ps" in f for f in doc["frames"])
