"""The authorization endpoint answers malformed parameters (non-ASCII response_type, control characters in
redirect_uri) with a clean OAuth error, never a 500: redirected to the client only when its redirect URI is
registered, otherwise shown here as a 400 page."""
from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from oauth.conftest import (RP_CALLBACK, cheap_password_hashing, idp, make_server, pkce_pair,  # noqa: F401
                            public_rp, rp)


def _get(idp, rp, **params):
    base = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": RP_CALLBACK,
            "scope": "openid", "state": "s-1", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    base.update(params)
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in base.items() if v is not None)
    return requests.get(f"{idp.url}/authorize?{query}", allow_redirects=False)


def _ascii_error_params(location: str) -> dict:
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    desc = params.get("error_description", "")
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in desc), desc
    return params


@pytest.mark.parametrize("response_type", ["\u00e9", "code\u00e9", "\x00", "code\t", "\U0001f600"])
def test_non_ascii_response_type_is_redirected_as_unsupported(idp, rp, response_type):
    r = _get(idp, rp, response_type=response_type)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(RP_CALLBACK + "?")
    params = _ascii_error_params(r.headers["Location"])
    assert params["error"] == "unsupported_response_type" and params["state"] == "s-1"


@pytest.mark.parametrize("response_type", ["\u00e9", "\x00"])
def test_non_ascii_response_type_without_a_registered_redirect_is_a_page(idp, rp, response_type):
    for extra in ({"client_id": "no-such-client"}, {"redirect_uri": "https://evil.example/cb"},
                  {"redirect_uri": None}):
        r = _get(idp, rp, response_type=response_type, **extra)
        assert r.status_code == 400 and "Location" not in r.headers, (extra, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("suffix", ["\t", "\x00", "\r\n", "\u00e9", "\x7f", "%00"])
def test_redirect_uri_with_control_or_non_ascii_characters_is_a_page(idp, rp, suffix):
    for where in ("end", "middle"):
        uri = RP_CALLBACK + suffix if where == "end" else RP_CALLBACK.replace("callback", f"call{suffix}back")
        r = _get(idp, rp, redirect_uri=uri)
        assert r.status_code == 400 and "Location" not in r.headers, (uri, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")
        assert "not registered" in r.text


def test_bad_redirect_uri_and_bad_response_type_together(idp, rp):
    r = _get(idp, rp, response_type="\u00e9", redirect_uri=RP_CALLBACK + "\x00")
    assert r.status_code == 400 and "Location" not in r.headers


def test_non_ascii_state_is_echoed_in_a_redirected_error(idp, rp):
    r = _get(idp, rp, response_type="\u00e9", state="\u00e9t\u00e9\x00")
    assert r.status_code == 302
    assert _ascii_error_params(r.headers["Location"])["state"] == "\u00e9t\u00e9\x00"


@pytest.mark.parametrize("max_age", ["1" + "0" * 400, "9" * 4000])
@pytest.mark.parametrize("prompt", [None, "none"])
def test_max_age_beyond_a_float_is_no_server_error(idp, rp, max_age, prompt):
    """An integer ``max_age`` too large for a float (from 309 digits; Python reads up to 4,300) made the
    bound ``now - max_age`` raise OverflowError: a 500 for anyone. Such an age allows any sign-in, as any
    ``max_age`` longer than the time since the epoch does."""
    r = _get(idp, rp, max_age=max_age, prompt=prompt)
    assert r.status_code in (302, 303), (r.status_code, r.text[:300])
    location = r.headers["Location"]
    if prompt == "none":  # nobody is signed in: the answer prompt=none waits for
        assert location.startswith(RP_CALLBACK + "?")
        assert _ascii_error_params(location)["error"] == "login_required"
    else:  # the sign-in starts
        assert not location.startswith(RP_CALLBACK)


@pytest.mark.parametrize("max_age", ["1_" + "0" * 400, "1_0", "+5", " 5", "\u0665", "-1", "5.0", "9" * 5000])
def test_max_age_that_is_not_digits_is_invalid(idp, rp, max_age):
    """``max_age`` is a non-negative integer in decimal digits (OpenID Connect Core 3.1.2.1); the other forms
    Python's ``int`` reads (underscores, a sign, surrounding spaces, other scripts' digits) are
    ``invalid_request``."""
    r = _get(idp, rp, max_age=max_age)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(RP_CALLBACK + "?")
    params = _ascii_error_params(r.headers["Location"])
    assert params["error"] == "invalid_request" and params["state"] == "s-1"
