"""End to end: the face step's presentation-attack checks in Chromium with a fake webcam.

The fake webcam plays a file and cannot follow a random instruction, so each test pins the
challenge pool to the movement its feed performs (``liveness(True, "turn_left")``; production draws
it at random). Every feed carries its own sensor-like noise (``noise_seed``) because the server
rejects frames whose exact pixels another capture already sent.

Feeds: ``d3`` from 3.0 s looks at the camera (~1.5 s), turns its head to its left (~5.0-5.8 s in the
clip) and back — measured with the face engine's landmarks (benchmarks/liveness_eval.py). A still
frame of ``d9`` is a photo of the enrolled d9 person held in front of the camera.
"""
from __future__ import annotations

import re

import pytest

from .test_face_signin import (allow_consent, demo_claims, login, path_of, record_callbacks, run_capture,
                               wait_for_instruction)


def sign_in_until_face_step(page, shots, demo, account):
    page.goto(demo.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))


@pytest.mark.parametrize("fps,size,seed", [(None, None, 501), (4, None, 503), (30, (1280, 720), 505),
                                           (None, (480, 640), 507)],
                         ids=["camera-15fps", "slow-camera-4fps", "hd-camera-30fps", "portrait-camera"])
def test_live_person_following_the_challenge_passes(y4m, new_page, shots, idp_server, demo_rp, make_account,
                                                    liveness, fps, size, seed):
    """The enrolled person (d3) turns their head as asked: the face step passes and the demo gets
    amr with "face"; the instruction was shown in the aria-live #challenge element. Also with a camera
    slower than the page's filming interval (4 fps against a frame every 150 ms, a dim room): the page
    films each camera frame once, so the server sees no repeated picture (a frozen feed to it); and with
    a 1280x720 30 fps camera and a portrait (480x640) one, as phones and laptops deliver."""
    liveness(True, "turn_left")
    account = make_account(person="d3")
    page = new_page(y4m.clip("d3", start=3.0, seconds=7, noise_seed=seed, fps=fps, size=size))
    callbacks = record_callbacks(page, demo_rp)
    sign_in_until_face_step(page, shots, demo_rp, account)
    instructions: list[str] = []
    page.wait_for_selector("#start-camera")
    assert page.locator("#challenge").get_attribute("aria-live") in ("assertive", "polite")
    page.click("#start-camera")
    instructions.append(wait_for_instruction(page).strip())
    shots(page, "challenge")  # the README's copy comes from test_liveness_sequence (two moves)
    assert re.search(r"turn your head to your left", instructions[0], re.I), instructions
    outcome = run_capture(page, idp_server, shots, "verify-live", start=lambda: None)
    assert outcome == "left", f"the live, enrolled person was rejected: {outcome}"
    allow_consent(page, shots, "Demo app")
    claims = demo_claims(page, demo_rp)
    assert "face" in claims["amr"], claims
    assert len(callbacks) == 1
    shots.assert_clean()


def test_photo_of_the_enrolled_person_is_rejected(y4m, new_page, shots, idp_server, demo_rp, make_account,
                                                  liveness):
    """A still photo of the enrolled person (d9) in front of the camera: the capture fails with a
    liveness message (not a face mismatch), and the demo never gets a code."""
    liveness(True, "turn_left")
    account = make_account(person="d9")
    page = new_page(y4m.still("d9", at=2.0, seconds=6, noise_seed=502))
    callbacks = record_callbacks(page, demo_rp)
    sign_in_until_face_step(page, shots, demo_rp, account)
    outcome = run_capture(page, idp_server, shots, "verify-photo")
    assert outcome.startswith("error: "), outcome
    assert "did not match" not in outcome, f"rejected by the face match, not by the liveness checks: {outcome}"
    assert path_of(page.url) == "/face/verify"
    assert callbacks == []
    shots.assert_clean()
