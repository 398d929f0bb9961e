"""RFC 6749 4.4 (Client Credentials Grant): only confidential clients registered for it; an access token
for the client itself — no ID token, no refresh token, no user; scopes limited to the registered ones minus
openid/offline_access; audited."""
from __future__ import annotations

import json

import pytest
import requests

from .conftest import RP_CALLBACK, register_client


@pytest.fixture
def machine(idp):
    from idp.oauth.clients import create_client
    doc, secret = create_client(idp.db, idp.config, "Batch job", [], scope="openid email offline_access",
                                grant_types=["client_credentials"])
    return doc["client_id"], secret


def _token(idp, auth, **data):
    return requests.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials", **data}, auth=auth)


def test_access_token_only_for_the_client_itself(idp, machine):
    r = _token(idp, machine)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["access_token"] and tok["token_type"] == "Bearer"
    assert "refresh_token" not in tok and "id_token" not in tok
    assert tok["scope"] == "email"  # openid and offline_access never granted to a client alone
    intro = requests.post(f"{idp.url}/oauth/introspect", data={"token": tok["access_token"]}, auth=machine).json()
    assert intro["active"] is True and intro["client_id"] == machine[0] and "sub" not in intro
    # no user behind it (and never openid): userinfo refuses it
    r = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 403 and r.json()["error"] == "insufficient_scope"


def test_scopes_limited_to_registered_ones(idp, machine):
    assert _token(idp, machine, scope="email").json()["scope"] == "email"
    for scope in ("profile", "openid", "offline_access", "email phone"):
        r = _token(idp, machine, scope=scope)
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", scope


def test_client_must_be_registered_for_the_grant(idp, rp):
    r = _token(idp, (rp.client_id, rp.secret))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"


def test_wrong_secret_refused(idp, machine):
    assert _token(idp, (machine[0], "wrong")).status_code == 401


def test_public_clients_cannot_have_the_grant(idp):
    from idp.oauth.clients import ClientError, create_client
    with pytest.raises(ClientError):
        create_client(idp.db, idp.config, "SPA", [RP_CALLBACK], public=True,
                      grant_types=["authorization_code", "client_credentials"])


def test_issuance_is_audited(idp, machine):
    tok = _token(idp, machine).json()
    [entry] = list(idp.db.audit_log.find({"event": "oauth.client_credentials_token"}))
    assert entry["client_id"] == machine[0] and entry["details"]["scopes"] == ["email"]
    assert tok["access_token"] not in repr(entry)


def test_discovery_and_cli(idp, cli_env):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert "client_credentials" in meta["grant_types_supported"]
    r = cli_env("clients", "create", "--name", "Cron", "--grant-type", "client_credentials", "--scope",
                "openid email", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["grant_types"] == ["client_credentials"] and out["client_secret"]
    r = cli_env("clients", "create", "--name", "Cron2", "--grant-type", "client_credentials", "--public")
    assert r.exit_code != 0


@pytest.mark.parametrize("end", ["disabled", "deleted"])
def test_a_token_in_flight_when_the_client_is_disabled_never_comes_alive(idp, machine, monkeypatch, end):
    """A client_credentials request that authenticated the client just before an operator disabled it (or deleted
    it) stored its token after the disable had revoked the client's tokens: it was dead only while the client
    stayed disabled, and came alive when the client was enabled again (a leaked secret: disable, rotate, enable -
    the attacker's token in flight survived). Now such a token is revoked and the request refused."""
    from idp.oauth import clients, tokens

    store = tokens.issue

    def ended_first(db, config, **kw):
        (clients.disable_client if end == "disabled" else clients.delete_client)(db, kw["client_id"])
        return store(db, config, **kw)
    monkeypatch.setattr(tokens, "issue", ended_first)
    r = _token(idp, machine)
    monkeypatch.setattr(tokens, "issue", store)
    assert r.status_code != 200 and "access_token" not in r.json(), r.text
    assert idp.db.tokens.count_documents({"client_id": machine[0], "revoked": False}) == 0
    assert idp.db.audit_log.count_documents({"event": "oauth.client_credentials_token"}) == 0
    if end == "disabled":
        assert clients.enable_client(idp.db, machine[0]) is True
        assert _token(idp, machine).status_code == 200  # enabled again: the client gets new tokens, only them
        assert idp.db.tokens.count_documents({"client_id": machine[0], "revoked": False}) == 1


def test_a_machine_only_client_can_be_edited_without_a_redirect_uri(idp, machine):
    """A client with only the client_credentials grant has no redirect URI; saving a change to it (the admin
    page's form sends no grant types) was refused with "at least one redirect URI is required"."""
    from idp.oauth import clients
    client_id, _ = machine
    doc = clients.update_client(idp.db, client_id, name="Nightly job", redirect_uris=[])
    assert doc["name"] == "Nightly job" and clients.get_client(idp.db, client_id)["name"] == "Nightly job"
    # a client with the code grant still needs one
    other, _ = register_client(idp.db, idp.config, "Web app", [RP_CALLBACK])
    with pytest.raises(clients.ClientError, match="redirect URI is required"):
        clients.update_client(idp.db, other["client_id"], redirect_uris=[])
