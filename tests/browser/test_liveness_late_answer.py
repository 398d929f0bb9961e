"""A server too slow to show the instruction in time: the page says so and offers Try again; nothing counted.

The server stalls 5 s in the work on the first frame with a face (a loaded CPU; the IdP runs in this
process, so the stall is a patch of idp.faceweb.liveness.dense_fields, once): it would show the moves more
than SHOWN_LATE_MAX_MS late, so it withholds them and answers 503 server_busy. Before, it showed them
once the page's filming window was over: a person, who turns only after seeing the instruction, failed
and the failure counted (a fake webcam, which turns on its own, could still pass). (That a new
capture then goes on as usual is tests/faceweb/test_late_answer_naming_the_moves.py's: the fake webcam
loops its file, so a second capture here may film the very frame the first one sent, a replay.)
"""
from __future__ import annotations

import time

from idp.faceweb import liveness as web_liveness

from .test_face_signin import page_state
from .test_liveness import sign_in_until_face_step


def test_an_instruction_the_server_would_show_too_late_is_withheld_uncounted(
        y4m, new_page, shots, idp_server, demo_rp, make_account, liveness, monkeypatch):
    liveness(True, "turn_left")
    account = make_account(person="d3")
    real, stalls = web_liveness.dense_fields, []

    def stalled(rgb, analysis):
        if not stalls and getattr(analysis, "box", None):
            stalls.append(1)
            time.sleep(web_liveness.SHOWN_LATE_MAX_MS / 1000.0 + 1.0)
        return real(rgb, analysis)

    monkeypatch.setattr(web_liveness, "dense_fields", stalled)
    page = new_page(y4m.clip("d3", start=3.0, seconds=7, noise_seed=511))
    sign_in_until_face_step(page, shots, demo_rp, account)
    page.wait_for_selector("#start-camera")
    page.click("#start-camera")
    page.wait_for_function("() => document.getElementById('result').textContent.trim() !== ''", timeout=60_000)
    said = page_state(page)
    assert "too busy" in said["result"] and "did not count" in said["result"], said
    assert page.locator("#challenge").is_hidden()  # the moves were never shown
    assert page.locator("#retry").is_visible() and page.locator("#retry").is_enabled()
    shots(page, "verify-late-answer")
    assert int((idp_server.db.face_status.find_one({"_id": account.uid}) or {}).get("failures") or 0) == 0
    shots.assert_clean()
