"""The demo relying party answers malformed form input with a clear 400, never a 500."""
from __future__ import annotations

import pytest


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
