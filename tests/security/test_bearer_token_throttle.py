"""The operator's bearer secrets - the initial access token of ``/oauth/register`` (``IDP_REGISTRATION_TOKEN``)
and ``IDP_METRICS_TOKEN`` - cannot be guessed at will. Before, neither endpoint counted a failure: any number of
guesses, in parallel, were each compared and answered 401 / 404. Now requests without the right token are counted
per client address in the database before the token is compared; past ``IDP_BEARER_IP_FREE_FAILURES`` (10 by
default) the address gets 429 ``slow_down`` with ``Retry-After``, also for the right token, on every instance."""
from __future__ import annotations

import requests
from support.concurrency import at_once

from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401

REG_TOKEN = "initial-access-token-0123456789abcdef"
METRICS_TOKEN = "metrics-scrape-token-0123456789abcdef"
FREE = 10  # the default of IDP_BEARER_IP_FREE_FAILURES
CLIENT = {"redirect_uris": ["https://rp.example/cb"], "token_endpoint_auth_method": "none"}


def _register(url, token):
    return requests.post(f"{url}/oauth/register", json=CLIENT, headers={"Authorization": f"Bearer {token}"},
                         timeout=30)


def _scrape(url, token):
    return requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _throttled(r):
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.json()["error"] == "slow_down" and r.json()["error_description"]
    assert int(r.headers["Retry-After"]) > 0


def test_wrong_registration_tokens_are_throttled_and_then_the_right_one_waits_too(make_server):
    idp = make_server(registration_access_token=REG_TOKEN)
    for i in range(FREE):
        r = _register(idp.url, f"wrong-guess-{i:02d}-0123456789abcdef0123")
        assert r.status_code == 401 and r.json()["error"] == "invalid_token", (i, r.status_code, r.text)
    _throttled(_register(idp.url, "wrong-guess-last-0123456789abcdef0123"))
    _throttled(_register(idp.url, REG_TOKEN))  # fail closed: a right guess is not confirmed either
    # the count is in the database: another instance (another process's app) refuses as well
    other = make_server(registration_access_token=REG_TOKEN)
    _throttled(_register(other.url, REG_TOKEN))
    assert idp.db.clients.count_documents({}) == 0


def test_the_right_registration_token_is_not_counted(make_server):
    idp = make_server(registration_access_token=REG_TOKEN)
    for i in range(FREE - 1):
        assert _register(idp.url, f"wrong-guess-{i:02d}-0123456789abcdef0123").status_code == 401
    for _ in range(3):
        assert _register(idp.url, REG_TOKEN).status_code == 201
    assert _register(idp.url, "wrong-guess-xx-0123456789abcdef0123").status_code == 401  # the FREE-th failure
    _throttled(_register(idp.url, REG_TOKEN))


def test_parallel_wrong_registration_tokens_are_compared_at_most_free_times(make_server):
    idp = make_server(registration_access_token=REG_TOKEN)
    n = 24
    answers = at_once([lambda i=i: _register(idp.url, f"parallel-guess-{i:02d}-0123456789abcdef") for i in range(n)])
    compared = [r for r in answers if r.status_code == 401]
    refused = [r for r in answers if r.status_code == 429]
    assert len(compared) + len(refused) == n, sorted(r.status_code for r in answers)
    assert len(compared) <= FREE, f"{len(compared)} of {n} parallel guesses were compared"
    _throttled(_register(idp.url, REG_TOKEN))


def test_wrong_metrics_tokens_are_throttled_by_the_same_check(make_server):
    idp = make_server(metrics_token=METRICS_TOKEN)
    assert _scrape(idp.url, METRICS_TOKEN).status_code == 200
    for i in range(FREE):
        assert _scrape(idp.url, f"wrong-scrape-{i:02d}-0123456789abcdef0123").status_code == 404, i
    _throttled(_scrape(idp.url, "wrong-scrape-last-0123456789abcdef0123"))
    _throttled(_scrape(idp.url, METRICS_TOKEN))
