"""A client secret rotated, or a client disabled, by another process stops authenticating at once. Each server
process keeps client documents in a short in-process cache (``clients.get_client_cached``, 5 s) that only its own
writes invalidate; client authentication read the secret hash from it, so after ``idp clients rotate-secret`` (or a
rotation on another worker's admin page) this process accepted the old secret at the token, revocation and
introspection endpoints until its copy expired. Now client authentication reads the client from the database.

"Another process" is simulated as it acts: this server's cache holds the client, then the database is changed
directly (no invalidation reaches this process); the cache's lifetime is made long so the window cannot close
while the test runs."""
from __future__ import annotations

import pytest
import requests


@pytest.fixture
def cached(idp, rp, monkeypatch):
    """``rp`` authenticated once with its secret, and its document in this server's cache (for an hour)."""
    from idp.oauth import clients
    monkeypatch.setattr(clients, "_CACHE_TTL", 3600.0)
    assert _revoke(idp, rp.client_id, rp.secret).status_code == 200
    before = clients.get_client_cached(idp.db, rp.client_id)
    assert before["secret_hash"] == clients.hash_secret(idp.config, rp.secret)
    return before


def _revoke(idp, client_id, secret):
    return requests.post(f"{idp.url}/oauth/revoke", data={"token": "not-a-token"}, auth=(client_id, secret))


def _calls(idp, client_id, secret):
    """The status of a token, revocation and introspection request authenticated with ``secret``."""
    token = requests.post(f"{idp.url}/oauth/token", auth=(client_id, secret),
                          data={"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"})
    introspect = requests.post(f"{idp.url}/oauth/introspect", data={"token": "not-a-token"}, auth=(client_id, secret))
    return token.status_code, _revoke(idp, client_id, secret).status_code, introspect.status_code


def test_an_old_secret_is_refused_as_soon_as_another_process_rotated_it(idp, rp, cached):
    from idp.keyring import pepper_id
    from idp.oauth import clients
    new_secret = clients.new_secret()
    idp.db.clients.update_one({"_id": rp.client_id}, {"$set": {  # as rotate_secret in another process
        "secret_hash": clients.hash_secret(idp.config, new_secret), "pepper_id": pepper_id(idp.config.client_secret_pepper)}})
    assert clients.get_client_cached(idp.db, rp.client_id) == cached  # this process still holds the old copy
    assert _calls(idp, rp.client_id, rp.secret) == (401, 401, 401)
    # the new secret works at once: the client is authenticated (then the fake refresh token is invalid_grant)
    assert _calls(idp, rp.client_id, new_secret) == (400, 200, 200)


def test_a_client_disabled_by_another_process_cannot_authenticate(idp, rp, cached):
    from idp.oauth import clients
    idp.db.clients.update_one({"_id": rp.client_id}, {"$set": {"enabled": False}})
    assert clients.get_client_cached(idp.db, rp.client_id)["enabled"] is True
    assert _calls(idp, rp.client_id, rp.secret) == (401, 401, 401)


def test_a_public_client_disabled_by_another_process_cannot_redeem(idp, user, public_rp, monkeypatch):
    from idp.oauth import clients
    monkeypatch.setattr(clients, "_CACHE_TTL", 3600.0)
    res, verifier = public_rp.sign_in_for_code()  # this server reads (and caches) the enabled client
    idp.db.clients.update_one({"_id": public_rp.client_id}, {"$set": {"enabled": False}})
    r = public_rp.redeem(res.params["code"], verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_client", (r.status_code, r.text)


def test_an_unchanged_client_still_authenticates(idp, rp, cached):
    assert _calls(idp, rp.client_id, rp.secret) == (400, 200, 200)
