"""The demo relying party against the real IdP, both over HTTP on 127.0.0.1 (different ports).

Driven with ``requests`` like a browser: one cookie jar holds the IdP's ``deepauth_session`` and the
demo's ``demo_session`` (cookies do not tell ports apart, so the names must differ).
"""
from __future__ import annotations

import html
import re
import urllib.parse

import requests

from support.html_forms import form_data, forms

PASSWORD = "purple elephants juggle quietly"
_ALLOW = re.compile(r"allow|approve|accept|consent|continue|authori[sz]e|grant", re.I)
_DENY = re.compile(r"deny|cancel|reject|decline|don.t", re.I)


def _pick_button(form, pattern, avoid=None):
    for b in form["buttons"]:
        label = f"{b.get('value', '')} {b.get('name', '')}"
        if pattern.search(label) and not (avoid and avoid.search(b.get("value", ""))):
            return b
    return None


def submit(s: requests.Session, page: requests.Response, form: dict, button: dict | None = None, **values):
    data = form_data(form, **values)
    if button is not None and button.get("name"):
        data[button["name"]] = button.get("value", "")
    action = urllib.parse.urljoin(page.url, form["action"] or page.url)
    return s.post(action, data=data, timeout=30)


def at_idp(r, idp) -> bool:
    return r.url.startswith(idp.url + "/")


def get_forms(r):
    return [f for f in forms(r.text) if f["method"] == "post"]


def finish_at_idp(s, r, idp, *, consent="allow", expect_consent=None):
    """Answer the IdP's consent page (if shown) until the browser is back at the RP; returns the last
    response and whether a consent page was seen."""
    seen = False
    for _ in range(5):
        if not at_idp(r, idp):
            break
        assert r.status_code == 200, (r.status_code, r.url, r.text[:500])
        candidates = [(f, _pick_button(f, _ALLOW, _DENY) if consent == "allow" else _pick_button(f, _DENY))
                      for f in get_forms(r)]
        candidates = [(f, b) for f, b in candidates if b is not None]
        assert candidates, f"no consent form at {r.url}: {r.text[:800]}"
        seen = True
        r = submit(s, r, *candidates[0])
    if expect_consent is not None:
        assert seen == expect_consent
    return r


def claim(page: str, section: str, name: str) -> str | None:
    """The value shown for ``name`` in the demo page's section (id-token | userinfo)."""
    part = page.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
    m = re.search(rf'data-claim="{re.escape(name)}">\s*<th[^>]*>[^<]*</th>\s*<td><code>(.*?)</code>', part, re.S)
    return html.unescape(m.group(1)) if m else None


def rp_form(r, action: str) -> dict:
    return next(f for f in get_forms(r) if f["action"].endswith(action))


def test_register_sign_in_refresh_sign_out_and_sign_in_again(idp, demo_factory):
    demo = demo_factory()
    s = requests.Session()

    # Landing page, then "Sign in": the RP redirects to /authorize, which sends the browser to /login.
    home = s.get(demo.url + "/", timeout=30)
    assert home.status_code == 200 and 'href="/login"' in home.text
    r = s.get(demo.url + "/login", timeout=30)
    assert at_idp(r, idp) and urllib.parse.urlsplit(r.url).path == "/login", r.url
    first_hop = r.history[0]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first_hop.headers["Location"]).query))
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] and q["nonce"] and q["state"]
    assert q["redirect_uri"] == demo.url + "/callback" and q["client_id"] == demo.client_id
    assert {c.name for c in s.cookies} >= {"demo_session", "deepauth_session"}

    # A newcomer registers on the hosted page (the pending authorization request continues).
    reg_page = s.get(idp.url + "/register", timeout=30)
    reg = next(f for f in get_forms(reg_page) if any(i.get("name") == "confirm" for i in f["inputs"]))
    r = submit(s, reg_page, reg, name="Ada Lovelace", username="ada", email="ada@example.test", phone="",
               password=PASSWORD, confirm=PASSWORD)
    r = finish_at_idp(s, r, idp, expect_consent=True)

    # Back at the demo: the verified ID token claims and the userinfo response are shown.
    assert r.url == demo.url + "/", (r.status_code, r.url, r.text[:500])
    user = idp.db.users.find_one({"username": "ada"})
    assert claim(r.text, "id-token", "sub") == user["_id"]
    assert claim(r.text, "id-token", "iss") == idp.url
    assert claim(r.text, "id-token", "aud") in (demo.client_id, f'["{demo.client_id}"]')
    assert '"pwd"' in claim(r.text, "id-token", "amr") and "face" not in claim(r.text, "id-token", "amr")
    assert claim(r.text, "id-token", "acr") == "urn:deepauth:acr:pwd"
    assert claim(r.text, "userinfo", "sub") == user["_id"]
    assert claim(r.text, "userinfo", "email") == "ada@example.test"
    assert 'id="amr"' in r.text and 'class="hl" data-claim="amr"' in r.text
    first_page = r

    # Refresh tokens: rotation is shown, and the new expiry.
    r = submit(s, first_page, rp_form(first_page, "/refresh"))
    assert r.status_code == 200 and r.url == demo.url + "/"
    rotated = re.search(r'id="rotated">(.*?)</td>', r.text, re.S).group(1)
    assert ">yes<" in rotated
    assert "refresh #1" in r.text
    # A second refresh uses the rotated token (the old one would have revoked the family).
    r = submit(s, r, rp_form(r, "/refresh"))
    assert r.status_code == 200 and "refresh #2" in r.text, r.text[:800]

    # Sign out through the IdP's end_session_endpoint (id_token_hint + post_logout_redirect_uri).
    r = submit(s, r, rp_form(r, "/logout"))
    hop = next(h for h in r.history if h.headers.get("Location", "").startswith(idp.url))
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hop.headers["Location"]).query))
    assert q["post_logout_redirect_uri"] == demo.url + "/" and q["id_token_hint"].count(".") == 2
    for _ in range(3):  # an IdP may ask to confirm the sign-out
        if not at_idp(r, idp):
            break
        f = get_forms(r)[0]
        r = submit(s, r, f, _pick_button(f, re.compile(r"sign.?out|log.?out|yes|confirm|continue", re.I)))
    assert urllib.parse.urlsplit(r.url)[:3] == urllib.parse.urlsplit(demo.url + "/")[:3], r.url
    assert "Signed out at the identity provider." in r.text
    assert 'href="/login"' in r.text

    # Signing in again needs the password again (the IdP session ended); consent is remembered.
    r = s.get(demo.url + "/login", timeout=30)
    assert at_idp(r, idp) and urllib.parse.urlsplit(r.url).path == "/login", r.url
    login = next(f for f in get_forms(r) if any(i["type"] == "password" for i in f["inputs"]))
    r = submit(s, r, login, username="ada", password=PASSWORD)
    r = finish_at_idp(s, r, idp, expect_consent=False)
    assert r.url == demo.url + "/", (r.url, r.text[:500])
    assert claim(r.text, "id-token", "sub") == user["_id"]
    assert '"pwd"' in claim(r.text, "id-token", "amr")


def test_idp_error_is_shown_with_its_description(idp, demo_factory):
    """The user denies consent: the IdP redirects back with error=access_denied; the demo shows it."""
    from idp.accounts.users import create_user

    create_user(idp.db, "grace", "grace@example.test", PASSWORD, name="Grace Hopper")
    demo = demo_factory()
    s = requests.Session()
    r = s.get(demo.url + "/login", timeout=30)
    login = next(f for f in get_forms(r) if any(i["type"] == "password" for i in f["inputs"]))
    r = submit(s, r, login, username="grace", password=PASSWORD)
    r = finish_at_idp(s, r, idp, consent="deny")
    assert r.url.startswith(demo.url + "/callback?"), r.url
    assert r.status_code == 400
    assert "<code>access_denied</code>" in r.text
    assert "error_description" in r.text
    assert "Signed in" not in r.text


def test_face_required_demo_on_a_face_off_idp_shows_unmet_requirements(idp, demo_factory):
    """The demo client as `idp demo` registers it (face policy required) while the IdP runs with face
    sign-in off, and the face button (acr pwd+face) of a face-optional demo: the IdP refuses at once
    (no password asked) and the demo shows the error and its description, not a signed-in page."""
    for demo, path in ((demo_factory(face_policy="required"), "/login"), (demo_factory(), "/login?acr=face")):
        s = requests.Session()
        r = s.get(demo.url + path, timeout=30)
        assert r.url.startswith(demo.url + "/callback?"), r.url
        assert not any(at_idp(h, idp) and "/login" in h.url for h in r.history)
        assert r.status_code == 400
        assert "<code>unmet_authentication_requirements</code>" in r.text
        assert "face sign-in is turned off on this server" in r.text
        assert "Signed in" not in r.text


def test_callback_with_a_foreign_state_is_refused(idp, demo_factory):
    demo = demo_factory()
    r = requests.get(demo.url + "/callback?code=abc&state=not-ours", timeout=30)
    assert r.status_code == 400
    assert "mismatching_state" in r.text


def test_back_channel_logout_ends_the_demo_session(idp, demo_factory):
    """Signing out everywhere at the IdP reaches the demo over the back channel: its session ends."""
    from idp.accounts.users import create_user
    create_user(idp.db, "bob", "bob@example.test", PASSWORD)
    demo = demo_factory()
    s = requests.Session()
    r = s.get(demo.url + "/login", timeout=30)
    login = next(f for f in get_forms(r) if any(i["type"] == "password" for i in f["inputs"]))
    r = submit(s, r, login, username="bob", password=PASSWORD)
    r = finish_at_idp(s, r, idp)
    assert r.url == demo.url + "/" and claim(r.text, "id-token", "sid")
    assert "refresh token" in r.text and "<td>issued " in r.text  # offline_access asked for and granted

    account = s.get(idp.url + "/account", timeout=30)
    everywhere = rp_form(account, "/account/sign-out-everywhere")
    submit(s, account, everywhere)
    import time
    for _ in range(100):
        if 'href="/login"' in s.get(demo.url + "/", timeout=30).text:
            break
        time.sleep(0.1)
    assert 'href="/login"' in s.get(demo.url + "/", timeout=30).text  # the demo signed the user out
    # a forged token is refused
    bad = requests.post(demo.url + "/backchannel-logout", data={"logout_token": "a.b.c"}, timeout=30)
    assert bad.status_code == 400
