"""/healthz, /readyz and /metrics on a real ``idp serve`` (gunicorn, two workers, multiprocess
metrics), after a real sign-in and token grant; /readyz's failure reasons."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import signal
import time
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from .conftest import idp_env, run_cli

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery staple"
REDIRECT = "https://rp.example.com/cb"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str, **kw) -> dict:
    resp = requests.get(url + "/metrics", timeout=10, **kw)
    assert resp.status_code == 200, resp.text
    return samples(resp.text)


def sign_in_and_get_code(url: str, client_id: str, password: str) -> tuple[requests.Response, str | None]:
    """The browser side of the code flow with PKCE; returns (last response, code or None)."""
    s = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    resp = s.get(url + "/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
        "state": "st", "nonce": "nn", "code_challenge": challenge, "code_challenge_method": "S256"},
        allow_redirects=True, timeout=10)
    assert resp.url.startswith(url + "/login"), resp.url
    token = CSRF.search(resp.text).group(1)
    resp = s.post(resp.url, data={"csrf_token": token, "username": "alice", "password": password},
                  allow_redirects=False, timeout=30)
    for _ in range(5):
        location = resp.headers.get("Location")
        if not location:
            return resp, None
        if location.startswith(REDIRECT):
            code = parse_qs(urlparse(location).query)["code"][0]
            return resp, f"{code} {verifier}"
        resp = s.get(urljoin(url, location), allow_redirects=False, timeout=10)
    return resp, None


def test_health_and_metrics_after_a_real_sign_in(tmp_path, serve_factory):
    env = idp_env(tmp_path)
    server = serve_factory(env, workers=2)
    server.wait_ready()
    url = server.url
    assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(url + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    # multiprocess mode: a fresh directory under the data directory
    assert list((tmp_path / "metrics").iterdir())

    assert run_cli(env, "users", "create", "--username", "alice", "--email", "alice@example.com",
                   "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    created = run_cli(env, "clients", "create", "--name", "Shop", "--redirect-uri", REDIRECT, "--face", "optional",
                      "--skip-consent", "--json")
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)

    before = scrape(url)
    failed, code = sign_in_and_get_code(url, client["client_id"], "wrong password")
    assert code is None and failed.status_code == 200
    _, code = sign_in_and_get_code(url, client["client_id"], PASSWORD)
    assert code, "no authorization code"
    code, verifier = code.split()
    auth = (client["client_id"], client["client_secret"])
    grant = requests.post(url + "/oauth/token", auth=auth, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert grant.status_code == 200, grant.text
    reused = requests.post(url + "/oauth/token", auth=auth, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert reused.status_code == 400
    # a few requests so that both workers have served some
    for _ in range(6):
        requests.get(url + "/.well-known/openid-configuration", timeout=5)

    after = scrape(url)
    assert value(after, "idp_signins_total", outcome="success") - value(before, "idp_signins_total",
                                                                        outcome="success") == 1
    assert value(after, "idp_signins_total", outcome="failed") - value(before, "idp_signins_total",
                                                                       outcome="failed") == 1
    for outcome in ("issued", "refused"):
        assert value(after, "idp_token_grants_total", grant_type="authorization_code", outcome=outcome) - value(
            before, "idp_token_grants_total", grant_type="authorization_code", outcome=outcome) == 1
    assert value(after, "idp_request_duration_seconds_count", group="discovery") >= 6
    assert value(after, "idp_request_duration_seconds_count", group="token") >= 2
    assert value(after, "idp_request_duration_seconds_count", group="signin") >= 2

    # the server's own log never carries the code or the tokens
    log = server.log_path.read_text(errors="replace")
    tokens = grant.json()
    for secret in (code, verifier, tokens["access_token"], tokens["id_token"], tokens.get("refresh_token")):
        assert not secret or secret not in log

    # not public: a proxied request (even from loopback) gets 404
    assert requests.get(url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5).status_code == 404

    # the database goes away: /healthz still answers, /readyz says why it is not ready
    record = json.loads((tmp_path / "embedded-db.json").read_text())
    os.kill(record["pid"], signal.SIGKILL)
    time.sleep(0.5)
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    unready = requests.get(url + "/readyz", timeout=10)
    assert unready.status_code == 503 and unready.json() == {"status": "unready", "reasons": ["database_unreachable"]}


def test_metrics_token_protects_metrics(tmp_path, serve_factory):
    env = idp_env(tmp_path, IDP_METRICS_TOKEN="s3cret-scrape-token-0123456789abcdef")
    server = serve_factory(env)
    server.wait_ready()
    assert requests.get(server.url + "/metrics", timeout=5).status_code == 404
    assert requests.get(server.url + "/metrics", timeout=5,
                        headers={"Authorization": "Bearer nope"}).status_code == 404
    scraped = scrape(server.url, headers={"Authorization": "Bearer s3cret-scrape-token-0123456789abcdef"})
    assert value(scraped, "idp_request_duration_seconds_count", group="discovery") >= 1


def _answers(url: str, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def test_idp_demo_counts_metrics_in_multiprocess_mode(tmp_path):
    """``idp demo`` registers (and audits) the demo client before gunicorn forks: the workers' metrics
    must still be collected across processes. Its log is for a person at a terminal: text lines (no
    JSON unless IDP_LOG_FORMAT says so) that name each request, and no line per probe answered 200."""
    import subprocess
    import sys

    from .conftest import ROOT, free_port

    port, client_port = free_port(), free_port()
    env = idp_env(tmp_path)
    del env["IDP_LOG_FORMAT"]
    with open(tmp_path / "demo.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "idp.cli", "demo", "--port", str(port), "--client-port",
                                 str(client_port)], env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            assert _answers(url + "/healthz") and _answers(f"http://127.0.0.1:{client_port}/")
            assert value(scrape(url), "idp_request_duration_seconds_count", group="health") >= 1
            assert requests.get(url + "/.well-known/openid-configuration", timeout=5).status_code == 200
            assert requests.get(url + "/healthz", timeout=5).status_code == 200
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
    log = (tmp_path / "demo.log").read_text()
    assert "development server" not in log.lower()
    assert '{"ts"' not in log, log
    assert re.search(r"INFO idp\.request: request method=GET path=/\.well-known/openid-configuration "
                     r"status=200 ms=[0-9.]+ \[rid=[0-9a-f]{16}\]", log), log
    assert "path=/healthz" not in log and "path=/readyz" not in log, log
