"""Security headers the provider sets on what it serves: every HTML page (sign-in, registration, consent,
account, error pages) cannot be framed (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``), runs
only its own scripts (CSP ``script-src 'self'``, no inline or eval; ``base-uri 'none'``), is not sniffed (``nosniff``), leaks no
Referer, and is not cached (``no-store``); the form_post page keeps those guarantees with its own CSP; token
responses are ``no-store`` + ``Pragma: no-cache`` (RFC 6749 §5.1, §5.2); HSTS is sent when the provider runs
behind HTTPS (secure cookies) and not over plain HTTP."""
from __future__ import annotations

import re

import pytest
import requests
from support.oidc import CALLBACK

from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)


def csp(r) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [sources]}."""
    out = {}
    for part in r.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def assert_page_headers(r, where: str) -> None:
    h = r.headers
    assert r.headers["Content-Type"].startswith("text/html"), (where, h)
    assert h.get("X-Frame-Options") == "DENY", where
    assert h.get("X-Content-Type-Options") == "nosniff", where
    assert h.get("Referrer-Policy") == "no-referrer", where
    assert "no-store" in h.get("Cache-Control", ""), where
    policy = csp(r)
    assert policy["frame-ancestors"] == ["'none'"], (where, policy)
    assert policy["base-uri"] == ["'none'"], (where, policy)  # an injected <base> moves no form or script
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts and not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(scripts), (where, policy)
    assert "'unsafe-inline'" not in policy.get("default-src", []), (where, policy)


def test_pages_and_error_pages_cannot_be_framed_sniffed_cached_or_script_injected(idp, user, rp):
    anon = requests.Session()
    for path in ("/login", "/register", "/no-such-page", "/authorize?client_id=x&client_id=y"):
        r = anon.get(f"{idp.url}{path}", allow_redirects=False)
        assert r.status_code in {"/login": [200], "/register": [200], "/no-such-page": [404],
                                 "/authorize?client_id=x&client_id=y": [400]}[path], (path, r.status_code)
        assert_page_headers(r, path)
    # signed in: the consent page and the account page
    res = rp.follow(rp.authorize_url())
    res = rp.login(res)
    assert '/authorize/consent"' in res.response.text
    assert_page_headers(res.response, "consent")
    r = rp.browser.get(f"{idp.url}/account", allow_redirects=False)
    assert r.status_code == 200
    assert_page_headers(r, "/account")


def test_redirects_and_static_files_carry_the_headers_too(idp):
    r = requests.get(f"{idp.url}/account", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    page = requests.get(f"{idp.url}/login").text
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', page):
        r = requests.get(f"{idp.url}{asset}")
        assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff", asset


def test_form_post_page_allows_only_its_own_script_and_posts_only_to_the_client(idp, user, rp):
    res, _ = rp.sign_in_for_code(response_mode="form_post")
    page = res.response
    assert page.status_code == 200 and 'method="post"' in page.text.lower()
    assert_page_headers(page, "form_post")
    policy = csp(page)
    assert policy["default-src"] == ["'none'"]
    [nonce] = policy["script-src"]
    assert nonce.startswith("'nonce-") and nonce[7:-1] in page.text
    assert policy["form-action"] == ["https://rp.example"] and policy["base-uri"] == ["'none'"]
    assert CALLBACK in page.text


def test_rfc6749_5_1_token_responses_are_not_cached(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    for r in (rp.redeem(res.params["code"], verifier),  # success (§5.1)
              rp.redeem(res.params["code"], verifier),  # error (§5.2): the code is spent
              rp.token(grant_type="client_credentials")):
        assert r.headers.get("Cache-Control") == "no-store", (r.status_code, r.headers)
        assert r.headers.get("Pragma") == "no-cache", (r.status_code, r.headers)
        assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("issuer", ["https://idp.example", None])
def test_hsts_only_behind_https(idp, issuer):
    """An https issuer means TLS ends in front of the provider (a proxy): HSTS on; a plain-HTTP issuer: off."""
    if issuer:
        idp.config.issuer = issuer
    r = requests.get(f"{idp.url}/login")
    if issuer:
        max_age = re.fullmatch(r"max-age=(\d+)(;.*)?", r.headers["Strict-Transport-Security"]).group(1)
        assert int(max_age) >= 180 * 86400
    else:
        assert "Strict-Transport-Security" not in r.headers
