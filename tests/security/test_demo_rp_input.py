"""The demo relying party answers malformed form input with a clear 400, never a 500."""
from __future__ import annotations

import pytest
from demo.conftest import demo_factory, idp  # noqa: F401  (fixtures: the real IdP and the demo RP)


@pytest.fixture
def demo():
    from clients.demo import create_app
    app = create_app("http://127.0.0.1:9", "demo-client", "secret", "http://127.0.0.1:5001")
    app.testing = True
    return app


@pytest.mark.parametrize("path", ["/logout", "/refresh"])
def test_csrf_field_with_non_ascii_characters_is_a_400(demo, path):
    c = demo.test_client()
    c.get("/")  # nothing signed in; give the session its CSRF token
    with c.session_transaction() as s:
        s.setdefault("csrf", "a-real-token")
    for sent in ("é", "\xff\xfe", "a-real-tokén"):
        r = c.post(path, data={"csrf": sent})
        assert r.status_code == 400, (sent, r.status_code)


def test_backchannel_logout_token_with_a_malformed_header_is_a_400(demo_factory):  # noqa: F811
    """Back-Channel Logout 1.0 section 2.6: a logout token that does not validate is a 400. One whose JOSE header
    lists a number in ``crit`` made the JWS library raise a ``TypeError`` before checking any signature: anyone
    could make the demo's back-channel endpoint answer 500."""
    import base64
    import json

    import requests

    def b64(value) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    demo = demo_factory()
    for header in ({"alg": "RS256", "crit": [5]}, {"alg": "RS256", "crit": [None]}):
        token = f"{b64(header)}.{b64({'sub': 'x'})}.{b64(b'sig')}"
        r = requests.post(demo.url + "/backchannel-logout", data={"logout_token": token}, timeout=30)
        assert r.status_code == 400, (header, r.status_code)
        assert r.json()["error"] == "invalid_request"
