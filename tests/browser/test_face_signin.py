"""End to end, in Chromium with a fake webcam: registration, biometric consent, enrollment,
and signing in to the demo relying party through OpenID Connect with the face step.

Feeds: ``d9`` is the enrolled person; ``d3`` is somebody else; ``no_face`` is a test pattern.
Every step is screenshotted to test-artifacts/browser/<test>/ (and every open page on failure,
with the browser console in console.log).
"""
from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import FACE_TIMEOUT_MS, PASSWORD, Account



@pytest.fixture(autouse=True)
def _without_liveness(liveness):
    """Enrollment, matching and the sign-in flow. The presentation-attack layer (on by
    default) asks for a random head movement the looping fake webcam cannot follow, so it is
    off here and tested in test_liveness.py."""
    liveness(False)


# --------------------------------------------------------------------------- page helpers

def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url).split("?")[0]


def register(page, idp, shots, username: str, name: str) -> None:
    page.goto(idp.url + "/register")
    page.fill("#name", name)
    page.fill("#username", username)
    page.fill("#email", f"{username}@example.test")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    shots(page, "register")
    page.click("#submit")
    page.wait_for_load_state()
    # Enrollment is offered right after registration; nothing requires it yet, so "Not now" is there.
    assert path_of(page.url) == "/face/enroll", f"registration did not lead to enrollment: {page.url}"
    assert page.get_by_role("link", name="Not now").first.is_visible()


def give_consent(page, shots) -> None:
    assert page.locator("#consent-checkbox").is_visible()
    shots(page, "biometric-consent", doc="page-face-consent")
    page.check("#consent-checkbox")
    page.click("#consent-submit")
    page.wait_for_selector("#start-camera")


def login(page, shots, account, doc: str | None = None) -> None:
    page.wait_for_selector("#username")
    assert path_of(page.url) == "/login", page.url
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    shots(page, "login", doc=doc)
    page.click("#submit")


def face_outcome(page, idp, timeout_ms: int = FACE_TIMEOUT_MS, here: str | None = None) -> str:
    """Wait until the browser left the capture page ``here`` (default: the current one; returns "left")
    or the page shows an error result (returns "error: <text>")."""
    here = here or path_of(page.url)
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        if path_of(page.url) != here:
            return "left"
        try:
            state = page.evaluate("""() => { const r = document.getElementById('result');
                return r && r.classList.contains('is-error') ? r.textContent.trim() : null; }""")
        except Exception:  # navigating: the next round sees the new page
            state = None
        if state:
            return "error: " + state
        page.wait_for_timeout(250)
    raise AssertionError(f"the face capture neither finished nor failed within {timeout_ms} ms (at {page.url}, "
                         f"guidance {page.locator('#guidance').text_content()!r})")


def run_capture(page, idp, shots, label: str, start=None, doc: str | None = None) -> str:
    """Start the camera (``start`` presses the button; default a click) and wait for the outcome."""
    page.wait_for_selector("#start-camera")
    here = path_of(page.url)
    shots.check(not page.locator("#retry").is_visible(), f"{label}: 'Try again' is visible before any attempt")
    shots(page, f"{label}-before")
    (start or (lambda: page.click("#start-camera")))()
    page.wait_for_function("p => (document.getElementById('progress').value > 0)"
                           " || document.getElementById('result').textContent.trim() !== ''"
                           " || location.pathname !== p", arg=here, timeout=FACE_TIMEOUT_MS)
    if path_of(page.url) == here:
        try:  # a quick pass may leave the page between any two of these calls
            shots(page, f"{label}-progress", doc=doc)
            retry_visible = page.evaluate("() => { const r = document.getElementById('result');"
                                    " const t = document.getElementById('retry');"
                                    " return r && !r.textContent.trim() ? !!(t && t.offsetParent) : null; }")
        except Exception:
            retry_visible = None
        if retry_visible is not None and path_of(page.url) == here:
            shots.check(not retry_visible, f"{label}: 'Try again' is visible while the capture runs")
    outcome = face_outcome(page, idp, here=here)  # the page may have left already (a quick pass)
    shots(page, f"{label}-{'done' if outcome == 'left' else 'error'}")
    return outcome


def wait_for_instruction(page) -> str:
    """Wait until the liveness instruction (#challenge) is shown and return its text. The page shows it once the
    server has answered the capture's first frame with a face: face work, bounded by FACE_TIMEOUT_MS like the
    rest of the face step (on a machine loaded by other test workers the face threads, which run at a lower
    priority, take many times their usual second for that first frame). A capture that ends without showing
    it fails here at once with what the page said, instead of waiting out the bound."""
    try:
        page.wait_for_function("() => !document.getElementById('challenge').hidden"
                               " || document.getElementById('result').textContent.trim() !== ''",
                               timeout=FACE_TIMEOUT_MS)
    except Exception as e:
        raise AssertionError(f"no instruction within {FACE_TIMEOUT_MS / 1000:g} s; the page says: "
                             f"{page_state(page)} (the face API's answers are in the test's console.log)") from e
    if page.locator("#challenge").is_hidden():
        raise AssertionError(f"the capture ended without showing the instruction: {page_state(page)}")
    return page.locator("#challenge").text_content()


def page_state(page) -> dict:
    """What the capture widget shows (guidance, result), for assertion messages."""
    return page.evaluate("() => Object.fromEntries(['guidance', 'result'].map(id => "
                         "[id, (document.getElementById(id) || {}).textContent || '']))")


def allow_consent(page, shots, client_name: str) -> None:
    page.wait_for_selector("button[name=decision][value=allow]")
    assert client_name in page.locator("h1").text_content()
    shots(page, "oauth-consent", doc="page-oauth-consent")
    page.click("button[name=decision][value=allow]")


def demo_claims(page, demo) -> dict:
    page.wait_for_selector("#amr")
    assert page.url.rstrip("/") == demo.url, page.url
    return {"amr": json.loads(page.locator("#amr").text_content()), "acr": page.locator("#acr").text_content()}


def session_cookie(page, idp) -> str | None:
    """The value of the IdP's session cookie in this page's browser context."""
    values = [c["value"] for c in page.context.cookies(idp.url) if c["name"] in ("deepauth_session", "__Host-session")]
    return values[0] if values else None


def record_callbacks(page, demo) -> list[str]:
    """URLs of every request to the demo's redirect URI made by this page."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.startswith(demo.url + "/callback") else None)
    return seen


# --------------------------------------------------------------------------- tests

def test_register_consent_enroll_then_sign_in_to_demo_with_face(y4m, new_page, shots, idp_server, demo_rp):
    """(a) register → biometric consent → enroll (d9 webcam) → demo "Sign in" → IdP password →
    face step passes (d9) → OAuth consent → the demo shows amr with "face"."""
    feed = y4m.clip("d9")
    idp = idp_server
    page = new_page(feed)
    username = "alice"  # one database per test session
    register(page, idp, shots, username, "Alice Example")

    page.goto(idp.url + "/account/face")
    assert page.locator("#enrollment-status").text_content().strip() == "Not enrolled"
    page.click("#enroll-link")
    assert path_of(page.url) == "/face/enroll"
    assert page.locator("#start-camera").count() == 0, "the camera must not be offered before consent"
    give_consent(page, shots)
    outcome = run_capture(page, idp, shots, "enroll", doc="page-face-enroll")
    assert outcome == "left", f"enrollment with the d9 feed failed: {outcome}"
    assert path_of(page.url) == "/face/enroll/done"
    assert page.locator("#recovery-codes li").count() >= 5
    shots(page, "recovery-codes")
    page.click("#continue")
    page.wait_for_url(lambda u: path_of(u) != "/face/enroll/done")
    uid = idp.db.users.find_one({"username": username})["_id"]
    assert idp.db.face_templates.count_documents({"_id": uid}) == 1

    # Later, in a fresh browser session: sign in to the demo app.
    page = new_page(feed)
    callbacks = record_callbacks(page, demo_rp)
    page.goto(demo_rp.url + "/")
    shots(page, "demo-start", doc="page-demo-start")
    page.get_by_role("link", name="Sign in", exact=True).click()

    login(page, shots, Account("?", username, f"{username}@example.test", "Alice Example"), doc="page-login")
    page.wait_for_url(re.compile(r"/face/verify"))
    assert callbacks == []
    before_face = session_cookie(page, idp)
    outcome = run_capture(page, idp, shots, "verify", doc="page-face-verify")
    assert outcome == "left", f"the face step rejected the enrolled person: {outcome}"
    # the face step rotated the session id (its JSON call set the new cookie) and the page carried on with it
    assert session_cookie(page, idp) not in (None, before_face)
    allow_consent(page, shots, "Demo app")
    claims = demo_claims(page, demo_rp)
    shots(page, "demo-signed-in", doc="page-demo-result")
    assert "face" in claims["amr"] and "pwd" in claims["amr"], claims
    assert claims["acr"] == "urn:deepauth:acr:pwd+face"
    assert len(callbacks) == 1
    shots.assert_clean()


def test_another_persons_face_is_rejected(y4m, new_page, shots, idp_server, demo_rp, make_account):
    """(b) the d9 person's account, somebody else (d3) in front of the camera: rejected with a
    message, and the browser is never sent back to the demo with a code."""
    account = make_account()
    page = new_page(y4m.clip("d3"))
    callbacks = record_callbacks(page, demo_rp)
    page.goto(demo_rp.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    outcome = run_capture(page, idp_server, shots, "verify-other-person")
    assert outcome.startswith("error: "), outcome
    assert "did not match" in outcome, outcome
    assert path_of(page.url) == "/face/verify"
    assert page.locator("#retry").is_visible()
    assert callbacks == [], f"the demo received a redirect: {callbacks}"
    # The account page is still out of reach: the session has not passed the face step.
    page.goto(idp_server.url + "/account")
    assert path_of(page.url) == "/face/verify"
    shots.assert_clean()


def test_no_face_feed_gets_guidance_and_never_passes(y4m, no_face_feed, new_page, shots, idp_server, demo_rp,
                                                     make_account, monkeypatch):
    """(c) a camera that shows no face: the page says so (aria-live guidance), no picture counts,
    and the capture ends without passing (the server stops it after MAX_FRAMES_PER_CAPTURE frames,
    lowered here so the test does not wait for 60 frames)."""
    from idp.faceweb import capture_sessions
    monkeypatch.setattr(capture_sessions, "MAX_FRAMES_PER_CAPTURE", 8)
    account = make_account()
    page = new_page(no_face_feed)
    callbacks = record_callbacks(page, demo_rp)
    page.goto(demo_rp.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    page.wait_for_selector("#start-camera")
    assert page.locator("#guidance").get_attribute("aria-live") == "polite"
    page.click("#start-camera")
    page.wait_for_function("() => /no face/i.test(document.getElementById('guidance').textContent)",
                           timeout=FACE_TIMEOUT_MS)
    shots(page, "no-face-guidance", doc="page-face-guidance", mask_video=False)  # test pattern only
    assert page.locator("#progress").evaluate("p => p.value") == 0
    outcome = face_outcome(page, idp_server)
    shots(page, "no-face-ended")
    assert outcome.startswith("error: "), outcome
    assert path_of(page.url) == "/face/verify"
    assert page.locator("#progress").evaluate("p => p.value") == 0
    assert callbacks == []
    shots.assert_clean()


def tab_to(page, selector: str, shots=None, max_tabs: int = 40, key: str = "Tab") -> None:
    """Press Tab until the element matching ``selector`` has the keyboard focus; with ``shots``, also
    check (softly) that the focused element shows a focus indicator (WCAG 2.4.7)."""
    for _ in range(max_tabs):
        if page.evaluate("s => { const a = document.activeElement; return !!a && a.matches(s); }", selector):
            if shots is not None:
                visible = page.evaluate("""() => { const st = getComputedStyle(document.activeElement);
                    return (st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) > 0)
                        || st.boxShadow !== 'none'; }""")
                shots.check(visible, f"{selector} on {path_of(page.url)} has no visible focus indicator")
            return
        page.keyboard.press(key)
    active = page.evaluate("() => document.activeElement && document.activeElement.outerHTML.slice(0, 120)")
    raise AssertionError(f"{selector} not reachable with {max_tabs} x {key} on {page.url} (focus on {active})")


def test_keyboard_only_first_sign_in_with_enrollment(y4m, new_page, shots, idp_server, demo_rp, make_account):
    """(d) keyboard alone (Tab, Enter, Space; no mouse): demo "Sign in" → password → enrollment is
    required by the app → biometric consent → enroll → recovery codes → face step → OAuth consent →
    the demo shows amr with "face"."""
    account = make_account(enrolled=False)
    page = new_page(y4m.clip("d9"))
    kb = page.keyboard
    page.goto(demo_rp.url + "/")

    tab_to(page, "a[href$='/login']", shots)
    kb.press("Enter")
    page.wait_for_selector("#username")
    tab_to(page, "#username", shots)
    kb.type(account.username)
    tab_to(page, "#password", shots)
    kb.type(account.password)
    shots(page, "kbd-login")
    kb.press("Enter")

    # No template yet and the app requires the face step: enrollment comes first.
    page.wait_for_url(re.compile(r"/face/enroll$"))
    tab_to(page, "#consent-checkbox", shots)
    kb.press("Space")
    assert page.locator("#consent-checkbox").is_checked()
    tab_to(page, "#consent-submit", shots)
    kb.press("Enter")
    page.wait_for_selector("#start-camera")

    def press_start(key):
        def go():
            tab_to(page, "#start-camera", shots)
            kb.press(key)
        return go

    outcome = run_capture(page, idp_server, shots, "kbd-enroll", start=press_start("Enter"))
    assert outcome == "left", f"keyboard enrollment failed: {outcome}"
    page.wait_for_selector("#recovery-codes")
    tab_to(page, "#continue", shots)
    kb.press("Enter")

    page.wait_for_url(re.compile(r"/face/verify"))
    outcome = run_capture(page, idp_server, shots, "kbd-verify", start=press_start("Space"))
    assert outcome == "left", f"keyboard face step failed: {outcome}"

    page.wait_for_selector("button[name=decision][value=allow]")
    tab_to(page, "button[name=decision][value=allow]", shots)
    shots(page, "kbd-oauth-consent")
    kb.press("Enter")
    claims = demo_claims(page, demo_rp)
    shots(page, "kbd-demo")
    assert "face" in claims["amr"], claims
    shots.assert_clean()


# --------------------------------------------------------------------------- face work limits (page side)

def test_a_busy_server_is_waited_out_and_the_face_step_passes(y4m, new_page, shots, idp_server, demo_rp,
                                                              make_account):
    """Every face slot of the server is taken for ~2.5 s when the capture starts: the page gets 429
    ``face_busy``, says the server is busy, sends the frame again after Retry-After, and passes."""
    import threading
    account = make_account()
    page = new_page(y4m.clip("d9"))
    page.goto(demo_rp.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    slots = idp_server.app.extensions["faceweb"]["slots"]
    held = threading.Event()
    holder = threading.Thread(target=lambda: slots.run(lambda: (held.set(), time.sleep(2.5))))
    holder.start()
    assert held.wait(10)
    page.click("#start-camera")
    page.wait_for_function("() => /busy/i.test(document.getElementById('guidance').textContent)",
                           timeout=FACE_TIMEOUT_MS)
    outcome = face_outcome(page, idp_server)
    holder.join()
    assert outcome == "left", outcome


# A browser whose frame callbacks stop while the camera runs (Chrome's in a background tab, Firefox's for a
# video out of view): requestVideoFrameCallback calls back three times, then never again.
CALLBACKS_STOP_AFTER_THREE = """(() => {
  const real = HTMLVideoElement.prototype.requestVideoFrameCallback;
  if (!real) { return; }
  let delivered = 0;
  HTMLVideoElement.prototype.requestVideoFrameCallback = function (cb) {
    return real.call(this, (now, meta) => { if (delivered < 3) { delivered += 1; cb(now, meta); } });
  };
})();"""


def test_the_face_step_passes_when_the_frame_callbacks_stop(y4m, new_page, shots, idp_server, demo_rp, make_account):
    """The page films each camera frame once by counting the browser's frame callbacks; when they stop
    while the camera runs, it films as before once they have been silent a second, so the capture goes
    on and passes instead of waiting for callbacks that never come."""
    account = make_account()
    page = new_page(y4m.clip("d9"))
    page.add_init_script(script=CALLBACKS_STOP_AFTER_THREE)
    page.goto(demo_rp.url + "/")
    page.get_by_role("link", name="Sign in", exact=True).click()
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    outcome = run_capture(page, idp_server, shots, "verify")
    assert outcome == "left", outcome
    assert page.evaluate("() => typeof HTMLVideoElement.prototype.requestVideoFrameCallback") == "function"


def test_the_capture_rate_limit_is_shown_with_a_countdown(y4m, new_page, shots, idp_server, make_account):
    """Over the per-user capture limit: the page shows the server's message and counts down on Try again."""
    import math
    from datetime import datetime, timezone
    account = make_account()
    window = idp_server.config.face_rate_window_s
    start = math.floor(time.time() / window) * window
    for at in (start, start + window):  # this window and the next: the capture may start after its boundary
        idp_server.db.throttles.insert_one({"_id": f"face_captures:user:{account.uid}@{at}", "count": 10**6,
                                            "expires": datetime.fromtimestamp(at + window, timezone.utc)})
    page = new_page(y4m.clip("d9"))
    page.goto(idp_server.url + "/login")
    login(page, shots, account)
    page.wait_for_url(re.compile(r"/face/verify"))
    outcome = run_capture(page, idp_server, shots, "verify-rate-limited")
    assert outcome.startswith("error: ") and "Too many face captures" in outcome and "wait" in outcome, outcome
    retry = page.locator("#retry")
    assert retry.is_visible() and retry.is_disabled()
    assert re.search(r"\(\d+ s\)", retry.text_content()), retry.text_content()
