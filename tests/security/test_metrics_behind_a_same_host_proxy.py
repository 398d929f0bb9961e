"""``/metrics`` without ``IDP_METRICS_TOKEN`` is for direct loopback clients of a development (http loopback)
issuer only. With an https issuer the provider runs behind a TLS proxy, often on the same host: every request it
forwards comes from 127.0.0.1, and one that adds no ``X-Forwarded-For`` made any internet client a "direct
loopback client" - the sign-in and face counts were public. Now an https issuer needs the token."""
from __future__ import annotations

from accounts.conftest import make_app  # noqa: F401  (fixture)

SAME_HOST_PROXY_WITHOUT_HEADERS = {"REMOTE_ADDR": "127.0.0.1"}


def test_an_https_provider_needs_the_token_even_from_loopback(make_app):  # noqa: F811
    app = make_app(issuer="https://idp.example")
    r = app.test_client().get("/metrics", base_url="https://idp.example", environ_base=SAME_HOST_PROXY_WITHOUT_HEADERS)
    assert r.status_code == 404 and b"idp_" not in r.data


def test_a_development_provider_answers_its_own_loopback_clients(make_app):  # noqa: F811
    app = make_app(issuer="http://127.0.0.1:5000")
    r = app.test_client().get("/metrics", environ_base=SAME_HOST_PROXY_WITHOUT_HEADERS)
    assert r.status_code == 200 and b"idp_request_duration_seconds" in r.data
