"""End to end at enrollment: the presentation-attack checks in Chromium with a fake webcam.

(The sign-in side is in test_liveness.py.) The fake webcam cannot follow a random instruction, so
each test pins the challenge pool to the movement its feed performs; production draws it at random
from the turns and the tilts (liveness is on by default: checked below).

Feeds: ``d3`` from 3.0 s faces the camera, turns its head to its left (about 16 degrees of the decision's
yaw, its pitch within 7 degrees) and back; from 6.8 s (the feed before the tilts joined the challenge) it
first looks down about 20 degrees, a tilt the decision now reads as a move of its own. Temporal noise
makes every frame's pixels unique, as with a real camera (the server refuses exact pixels another
capture already sent). A colour-LFW photo, looped and letterboxed to 640x480, is a still photo held
in front of the camera.
"""
from __future__ import annotations

import pytest

from .test_face_signin import give_consent, login, path_of, run_capture, wait_for_instruction


@pytest.fixture
def pinned_challenge(idp_server, monkeypatch):
    """Liveness on with a fixed challenge for this test (restored afterwards)."""
    def pin(challenge: str) -> None:
        monkeypatch.setattr(idp_server.config, "liveness_enabled", True)
        monkeypatch.setattr(idp_server.config, "liveness_challenges", challenge)
    return pin


def signed_in_at_enrollment(page, idp, shots, account) -> None:
    page.goto(idp.url + "/login")
    login(page, shots, account)
    page.wait_for_url(lambda u: path_of(u) != "/login")
    page.goto(idp.url + "/face/enroll")
    give_consent(page, shots)


def good_lfw_photo(idp_server, faces_dir, nth: int = 0):
    """The ``nth`` colour-LFW photo that passes the face engine's quality checks (so only liveness can refuse
    it). Tests sharing the server take different ones: it refuses the exact pixels another capture sent."""
    from idp.faceweb.views import engine
    found = 0
    with idp_server.app.app_context():
        for path in sorted((faces_dir / "lfw_color65_240px" / "Vladimir_Putin").glob("*.jpg")):
            if engine().analyze(path.read_bytes(), embed="never").ok:
                if found == nth:
                    return path
                found += 1
    pytest.fail(f"fewer than {nth + 1} colour-LFW photos pass the quality checks")


def test_still_photo_is_rejected_at_enrollment(y4m, face_data, new_page, shots, idp_server, make_account,
                                               pinned_challenge):
    """A photo held still in front of the camera: enrollment fails with the static-feed message, the
    turn instruction was shown, and no template is stored."""
    from idp.liveness import REASON_MESSAGES
    # The served configuration's default (the other browser tests switch it off for themselves only).
    assert idp_server.config.liveness_enabled is True
    pinned_challenge("turn_left")
    account = make_account(enrolled=False)
    page = new_page(y4m.photo(good_lfw_photo(idp_server, face_data), seconds=6))
    signed_in_at_enrollment(page, idp_server, shots, account)
    assert page.locator("#challenge").get_attribute("aria-live") == "assertive"
    page.click("#start-camera")
    assert "turn your head to your left" in wait_for_instruction(page)
    outcome = run_capture(page, idp_server, shots, "enroll-photo", start=lambda: None)
    assert outcome == "error: " + REASON_MESSAGES["static_feed"], outcome
    # the instruction and its illustration stay visible after the failure
    assert page.locator("#challenge").is_visible() and page.locator("#move-demo").is_visible()
    assert page.locator("#retry").is_visible()
    assert path_of(page.url) == "/face/enroll"
    assert idp_server.db.face_templates.count_documents({"_id": account.uid}) == 0
    entry = idp_server.db.audit_log.find_one({"event": "face.enroll", "user_id": account.uid})
    assert entry["decision"] == "rejected" and entry["details"]["liveness_reasons"][0] == "static_feed"
    shots.assert_clean()


def test_live_turn_passes_enrollment(y4m, new_page, shots, idp_server, make_account, pinned_challenge):
    """The d3 person turns their head to the left as asked: enrolled, recovery codes shown, the audit
    entry records the passed liveness check and its challenge."""
    pinned_challenge("turn_left")
    account = make_account(enrolled=False)
    feed = y4m._run("live-d3-3.0-5-n601",
                    ["-ss", "3.0", "-i", str(y4m.faces / "video" / "liveportrait_driving" / "d3.mp4")],
                    y4m._fit() + ",noise=alls=3:allf=t:all_seed=601", 5)
    page = new_page(feed)
    signed_in_at_enrollment(page, idp_server, shots, account)
    page.click("#start-camera")
    text = wait_for_instruction(page)
    shots(page, "enroll-challenge")
    assert "turn your head to your left" in text, text
    outcome = run_capture(page, idp_server, shots, "enroll-live", start=lambda: None)
    assert outcome == "left", f"the live person turning as asked was refused: {outcome}"
    assert path_of(page.url) == "/face/enroll/done"
    assert idp_server.db.face_templates.count_documents({"_id": account.uid}) == 1
    entry = idp_server.db.audit_log.find_one({"event": "face.enroll", "user_id": account.uid,
                                              "decision": "enrolled"})
    assert entry["details"]["liveness_passed"] is True and entry["details"]["liveness_challenge"] == "turn_left"
    shots.assert_clean()


def test_tilts_are_illustrated_and_a_still_photo_does_not_pass_them(y4m, face_data, new_page, shots, idp_server,
                                                                    make_account, pinned_challenge):
    """A challenge of two tilts (look_up, then look_down) at enrollment, where every move is shown at once:
    the instruction names them with the real degrees, one head icon per move with an up / down arrow
    (the same in the mirrored preview), and a still photo is refused."""
    from idp.liveness import REASON_MESSAGES, challenge_instruction
    pinned_challenge("look_up+look_down")
    account = make_account(enrolled=False)
    page = new_page(y4m.photo(good_lfw_photo(idp_server, face_data, nth=1), seconds=6))
    signed_in_at_enrollment(page, idp_server, shots, account)
    page.click("#start-camera")
    text = wait_for_instruction(page)
    assert text == challenge_instruction("look_up+look_down") and "Tilt your head up, then down" in text, text
    steps = page.locator("#move-demo .move-step")
    assert steps.count() == 2
    assert [steps.nth(i).get_attribute("data-move") for i in range(2)] == ["look_up", "look_down"]
    assert [steps.nth(i).locator(".move-arrow").text_content() for i in range(2)] == ["\u2191", "\u2193"]
    assert [steps.nth(i).locator(".move-label").text_content() for i in range(2)] == ["1. chin up", "2. chin down"]
    shots(page, "challenge-tilts")
    outcome = run_capture(page, idp_server, shots, "enroll-photo-tilts", start=lambda: None)
    assert outcome == "error: " + REASON_MESSAGES["static_feed"], outcome
    assert idp_server.db.face_templates.count_documents({"_id": account.uid}) == 0
    shots.assert_clean()
