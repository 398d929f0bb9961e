"""RFC 6750 §2.1 at userinfo with odd ``Authorization`` headers, sent raw over the wire (real server): the
scheme in any case and extra white space are the bearer scheme; an empty token, another scheme, a scheme
glued to the token, or a second header never give a 500 - a 401 with a ``Bearer`` challenge (no error code
when no bearer token was sent, RFC 6750 §3.1; ``invalid_token`` for a token that is not one). The same
answers as before the parsers were merged (``idp.web.bearer.sent_token``)."""
from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

from .test_rfc6750_3_www_authenticate import challenge


class _Raw:
    def __init__(self, status, headers, body):
        self.status_code, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def _get(url: str, *authorization: str) -> _Raw:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.putrequest("GET", u.path)
        for value in authorization:
            conn.putheader("Authorization", value)
        conn.endheaders()
        r = conn.getresponse()
        return _Raw(r.status, r.headers, r.read())
    finally:
        conn.close()


def test_rfc6750_2_1_odd_authorization_headers(idp, user, rp):
    token = rp.tokens(scope="openid")["access_token"]
    url = f"{idp.url}/oauth/userinfo"
    for header in (f"Bearer {token}", f"bearer {token}", f"BEARER {token}", f"Bearer   {token}", f"Bearer\t{token}"):
        r = _get(url, header)
        assert r.status_code == 200 and r.json()["sub"] == user["_id"], (header, r.status_code, r.body)
    no_token = ("Bearer", "Bearer ", "Bearer   ", "bearer", f"Bearer{token}", f"Basic {token}", f"Token {token}", "")
    for header in no_token:
        r = _get(url, header)
        assert r.status_code == 401, (header, r.status_code, r.body)
        scheme, params = challenge(r)
        assert scheme == "bearer" and "error" not in params, (header, r.headers["WWW-Authenticate"])
    # not the token (a second header is joined to the first by the server: "a, b", no token either)
    for headers in ((f"Bearer {token}x",), (f"Bearer {token} extra",), (f"Bearer {token}", f"Bearer {token}"),
                    (f"Bearer {token}", "Bearer other"), ("Bearer other", f"Bearer {token}")):
        r = _get(url, *headers)
        assert r.status_code == 401 and r.json()["error"] == "invalid_token", (headers, r.status_code, r.body)
        scheme, params = challenge(r)
        assert scheme == "bearer" and params["error"] == "invalid_token", (headers, r.headers["WWW-Authenticate"])
