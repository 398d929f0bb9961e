"""With liveness on, a person whose face is not usable yet is told why while the page films.

Until a frame with a usable face arrives the server does not name the moves, so the instruction cannot
appear; those are exactly the frames where the guidance matters ("No face found", "too dark", "come
closer"). The frame answers carry it in ``message``: the page must show it, not keep "The instruction
appears in a moment" for the whole window.
"""
from __future__ import annotations

import re

from .test_face_signin import login, record_callbacks


def test_a_camera_without_a_face_is_told_so_while_filming_with_liveness_on(no_face_feed, new_page, shots,
                                                                             idp_server, demo_rp, make_account,
                                                                             liveness):
    liveness(True)  # the default: random two-move sequences (turns and tilts)
    account = make_account()
    page = new_page(no_face_feed)
    record_callbacks(page, demo_rp)
    page.goto(demo_rp.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    page.wait_for_selector("#start-camera")
    page.evaluate("""() => { window.__guidance = []; const g = document.getElementById('guidance');
        new MutationObserver(() => window.__guidance.push(g.textContent))
            .observe(g, {childList: true, characterData: true, subtree: true}); }""")
    page.click("#start-camera")
    # the capture films for its whole window (no usable face ever comes), then finishes
    page.wait_for_function("() => window.__guidance.includes('Checking…')", timeout=60_000)
    said = page.evaluate("() => window.__guidance")
    filming = said[:said.index("Checking…")]
    assert any(re.search(r"no face", s, re.I) for s in filming), said
