"""The face step's "I can't turn my head" choice, in Chromium: it explains why no movement-free check is
offered and leads to the recovery path that exists (a recovery code, then the account page where face
sign-in can be turned off). No capture runs, so the feed is the test pattern."""
from __future__ import annotations

from .test_face_signin import login, path_of


def test_cannot_turn_head_leads_to_a_working_recovery_path(no_face_feed, new_page, shots, idp_server, make_account,
                                                            liveness):
    from idp.faceweb import recovery

    liveness(True, "turn_left+turn_right")
    account = make_account()
    codes = recovery.issue_recovery_codes(idp_server.db, account.uid, idp_server.config.secret_key)
    page = new_page(no_face_feed)
    page.goto(idp_server.url + "/login")
    login(page, shots, account)
    page.wait_for_url("**/face/verify")
    # before the camera starts, the progress already counts the challenge's moves (not pictures)
    assert page.locator("#progress-label").text_content() == "Moves done"
    assert page.locator("#progress").evaluate("p => [p.value, p.max]") == [0, 2]
    choice = page.locator("#cannot-turn")
    assert choice.is_visible()
    assert not page.locator("#cannot-turn-recover").is_visible()  # folded until chosen
    page.get_by_text("I can't turn my head").click()
    text = choice.inner_text()
    assert "without head movement" in text and "recovery code" in text, text
    link = page.locator("#cannot-turn-recover")
    # the link names the request the page was shown for, as its forms do: none here (an account sign-in)
    assert link.is_visible() and link.get_attribute("href") == "/face/recover?signin_request="
    shots(page, "cannot-turn", doc="page-face-cannot-turn", full_page=True)
    link.click()
    page.wait_for_url("**/face/recover?signin_request=")
    assert page.locator("#recovery-code").is_visible()
    page.fill("#recovery-code", codes[0])
    page.click("#recover-submit")
    page.wait_for_url("**/face/enroll")  # the code works: asked to enroll again, which may wait
    page.goto(idp_server.url + "/account/face")
    assert path_of(page.url) == "/account/face", page.url
    assert page.locator("#delete-face").is_visible()  # face sign-in can be turned off from here
    shots.assert_clean()
