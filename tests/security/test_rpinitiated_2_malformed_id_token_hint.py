"""RP-Initiated Logout 1.0 section 2 (the OP validates that it issued the id_token_hint), on hints nobody
signed whose JOSE header is malformed: a ``crit`` list holding a number made the JWS library raise a
``TypeError`` (not one of its own errors) before any signature was checked, and the sign-out page answered
500 with a traceback in the error log, for anyone, without a session. A hint that cannot be read is a
hint that is not ours: the page asks the user to confirm, as for any other bad hint; the authorization
endpoint (``prompt=none``) already answered ``login_required``."""
from __future__ import annotations

import base64
import json
import logging

import pytest
import requests

from oauth.conftest import cheap_password_hashing, idp, make_server, rp, user  # noqa: F401  (fixtures)


def _b64(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HEADERS = [{"alg": "RS256", "crit": [5]}, {"alg": "RS256", "crit": [None, "exp"]}, {"alg": "ES256", "crit": [{}]}]


@pytest.mark.parametrize("header", HEADERS, ids=["crit-number", "crit-null", "crit-object"])
def test_a_hint_with_a_malformed_header_asks_for_confirmation(idp, rp, caplog, header):  # noqa: F811
    hint = f"{_b64(header)}.{_b64({'iss': idp.url, 'sub': 'someone', 'aud': rp.client_id})}.{_b64(b'sig')}"
    with caplog.at_level(logging.ERROR):
        r = requests.get(f"{idp.url}/end-session", params={"id_token_hint": hint, "client_id": rp.client_id,
                                                             "post_logout_redirect_uri": "https://rp.example/"},
                         allow_redirects=False)
        authorize = requests.get(rp.authorize_url(prompt="none", id_token_hint=hint), allow_redirects=False)
    assert r.status_code == 200, r.status_code
    assert 'name="confirm"' in r.text  # no redirect without a valid hint: the user is asked
    assert authorize.status_code == 302 and "error=login_required" in authorize.headers["Location"]
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
