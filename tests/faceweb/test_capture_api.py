"""Strict validation of the frame endpoints and the binding of frames to their capture session."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from PIL import Image

from idp import get_db

from .conftest import Browser


def _signed_in_with_consent(app, new_user, name="alice"):
    new_user(name)
    b = Browser(app)
    b.login(name)
    b.consent()
    return b


def test_frame_endpoint_rejects_bad_input(make_app, new_user, people):
    app = make_app(max_image_bytes=200_000, max_image_pixels=400 * 400)
    b = _signed_in_with_consent(app, new_user)
    cap = b.start("enroll").get_json()

    r = b.frame(cap, people["alice"][0], content_type="text/plain")
    assert r.status_code == 415 and r.get_json()["error_description"]
    r = b.frame(cap, people["alice"][0], content_type="application/octet-stream")
    assert r.status_code == 415

    r = b.frame(cap, b"\xff\xd8\xff" + b"\x00" * 210_000)  # over max_image_bytes
    assert r.status_code == 413 and "too large" in r.get_json()["message"]

    r = b.frame(cap, b"this is not an image at all")
    assert r.status_code == 400 and r.get_json()["message"] == "The image must be a JPEG or PNG."
    r = b.frame(cap, b"\xff\xd8\xff\xe0" + b"garbage" * 50)
    assert r.status_code == 400 and r.get_json()["error"] == "corrupt_image" and r.get_json()["message"]
    r = b.frame(cap, b"")
    assert r.status_code == 400

    big = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 90, 90)).save(big, "PNG", optimize=True)  # 307,200 px > 160,000
    assert len(big.getvalue()) < 200_000
    r = b.frame(cap, big.getvalue(), content_type="image/png")
    assert r.status_code == 400 and r.get_json()["error"] == "too_many_pixels"

    # PNG is accepted as well as JPEG.
    png = io.BytesIO()
    Image.open(io.BytesIO(people["alice"][0])).save(png, "PNG")
    r = b.frame(cap, png.getvalue(), content_type="image/png")
    assert r.status_code == 200 and r.get_json()["ok"] is True

    # None of the rejected requests was recorded as a frame; no image is stored.
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    assert doc["count"] == 1 and len(doc["frames"]) == 1


def test_frames_are_bound_to_user_purpose_nonce_and_lifetime(app, new_user, people):
    alice = _signed_in_with_consent(app, new_user, "alice")
    bob = _signed_in_with_consent(app, new_user, "bob")
    cap = alice.start("enroll").get_json()
    image = people["alice"][0]

    # Without the CSRF header the API refuses.
    r = alice.client.post(cap["frames_url"], data=image, content_type="image/jpeg",
                          headers={"X-Capture-Nonce": cap["nonce"]})
    assert r.status_code == 400 and r.get_json()["error"] == "csrf_failed"
    # Wrong or missing nonce.
    assert alice.frame(cap, image, nonce="not-the-nonce").status_code == 403
    r = alice.api(cap["frames_url"], data=image, content_type="image/jpeg")
    assert r.status_code == 403 and r.get_json()["error"] == "bad_nonce"
    # Another user's session cannot feed (or finish) alice's capture, even with the right nonce.
    r = bob.frame(cap, image)
    assert r.status_code == 403 and r.get_json()["error"] == "capture_not_found"
    assert bob.finish(cap).status_code == 403
    # Nor can alice's own other browser session (or a later sign-in of this one): captures are bound to
    # the browser session and its sign-in, not only to the user.
    alice2 = Browser(app)
    alice2.login("alice")
    r = alice2.frame(cap, image)
    assert r.status_code == 403 and r.get_json()["error"] == "capture_not_found"
    assert alice2.finish(cap).status_code == 403
    # A capture cannot be used for another purpose (checked where every frame and finish is looked up).
    import pytest
    from idp.faceweb import capture_sessions
    captures = capture_sessions.Captures(get_db(app), None, 300)
    doc = get_db(app).capture_sessions.find_one({"_id": cap["capture_id"]})
    alice_id, binding = doc["user_id"], doc["binding"]
    with pytest.raises(capture_sessions.CaptureError) as exc:
        captures.open_for(cap["capture_id"], alice_id, "verify", cap["nonce"], binding)
    assert exc.value.status == 403
    assert captures.open_for(cap["capture_id"], alice_id, "enroll", cap["nonce"], binding)["_id"] == cap["capture_id"]
    # Not signed in at all.
    anon = Browser(app)
    r = anon.client.post(cap["frames_url"], data=image, content_type="image/jpeg",
                         headers={"X-Capture-Nonce": cap["nonce"], "X-CSRFToken": alice.csrf})
    assert r.status_code == 400  # another session's CSRF token: refused before anything else
    anon.page_csrf("/login")  # its own valid CSRF token, but nobody signed in
    r = anon.frame(cap, image)
    assert r.status_code == 401, r.get_json()

    assert alice.frame(cap, image).status_code == 200
    db = get_db(app)
    assert db.capture_sessions.find_one({"_id": cap["capture_id"]})["count"] == 1

    # Expired captures refuse frames.
    db.capture_sessions.update_one({"_id": cap["capture_id"]},
                                   {"$set": {"expires": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    r = alice.frame(cap, image)
    assert r.status_code == 410 and r.get_json()["error"] == "capture_expired"
    assert alice.finish(cap).status_code == 410

    # Finished captures refuse frames and a second finish.
    cap2 = alice.start("enroll").get_json()
    assert alice.finish(cap2).get_json()["ok"] is False  # no frames: nothing to enroll
    r = alice.frame(cap2, image)
    assert r.status_code == 409 and r.get_json()["error"] == "capture_finished"
    assert alice.finish(cap2).status_code == 409

    # The TTL index purges capture sessions at their expiry time.
    info = db.capture_sessions.index_information()["expires_ttl"]
    assert info["expireAfterSeconds"] == 0


def test_frame_count_per_capture_is_limited(app, new_user):
    from idp.faceweb import capture_sessions
    b = _signed_in_with_consent(app, new_user)
    cap = b.start("enroll").get_json()
    get_db(app).capture_sessions.update_one({"_id": cap["capture_id"]},
                                            {"$set": {"count": capture_sessions.MAX_FRAMES_PER_CAPTURE}})
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 120, 120)).save(buf, "JPEG")
    r = b.frame(cap, buf.getvalue())
    assert r.status_code == 409 and r.get_json()["error"] == "too_many_frames"


def test_frames_that_never_pass_the_quality_gate_end_with_the_quality_reason(app, new_user, monkeypatch):
    """A camera whose frames never pass the quality gate: the answer to the last allowed frame says
    "done", and the finish names the reason the frames failed on, not "Too many pictures"."""
    from idp.face import REASON_MESSAGES
    from idp.faceweb import capture_sessions
    monkeypatch.setattr(capture_sessions, "MAX_FRAMES_PER_CAPTURE", 4)
    b = _signed_in_with_consent(app, new_user)
    cap = b.start("enroll").get_json()
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 120, 120)).save(buf, "JPEG")
    answers = [b.frame(cap, buf.getvalue()).get_json() for _ in range(4)]
    assert [a["done"] for a in answers] == [False, False, False, True], answers
    body = b.finish(cap).get_json()
    assert body["ok"] is False and body["reasons"] == ["not_enough_good_frames", "no_face"], body
    assert REASON_MESSAGES["no_face"] in body["message"] and "Too many" not in body["message"]


def test_frames_take_bodies_beyond_the_form_limit(make_app, new_user, people):
    """Only the frame endpoint takes bodies up to ``IDP_MAX_BODY_BYTES``; every other request is held to
    ``IDP_MAX_FORM_BYTES`` (idp.web.bodylimit)."""
    app = make_app(max_form_bytes=4096)
    b = _signed_in_with_consent(app, new_user)
    cap = b.start("enroll").get_json()
    assert len(people["alice"][0]) > 4096
    r = b.frame(cap, people["alice"][0])
    assert r.status_code == 200 and r.get_json()["ok"] is True
    r = b.client.post("/login", data={"username": "x" * 5000, "password": "y"})
    assert r.status_code == 413
