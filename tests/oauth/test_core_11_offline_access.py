"""OpenID Connect Core 11 (Offline Access): a refresh token only when ``offline_access`` is requested,
allowed for the client and consented to by the user; discovery lists the scope; the CLI registers it; the
migration gives existing refresh-capable clients the scope."""
from __future__ import annotations

import json

import requests
from .conftest import RP, RP_CALLBACK


def test_no_refresh_token_without_offline_access(idp, user, rp):
    tok = rp.tokens(scope="openid profile")
    assert tok["access_token"] and tok["id_token"]
    assert "refresh_token" not in tok
    assert "offline_access" not in tok.get("scope", "")


def test_refresh_token_when_offline_access_requested_and_granted(idp, user, rp):
    tok = rp.tokens(scope="openid offline_access")
    assert tok["refresh_token"]
    assert rp.refresh(tok["refresh_token"]).status_code == 200


def test_offline_access_ignored_when_client_not_registered_for_it(idp, user):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "Online only", [RP_CALLBACK], scope="openid profile")
    tok = RP(idp, doc["client_id"], secret).tokens(scope="openid profile offline_access")
    assert "refresh_token" not in tok


def test_consent_page_shows_offline_access_and_prompt_none_needs_prior_consent(idp, user, rp):
    # first sign-in without offline_access: consent remembered for openid profile only
    rp.tokens(scope="openid profile")
    # prompt=none asking for offline_access now: the user never consented to it
    res = rp.follow(rp.authorize_url(scope="openid profile offline_access", prompt="none",
                                     code_challenge="x" * 43, code_challenge_method="S256"))
    assert res.params.get("error") == "consent_required"
    # interactive: the consent page is shown again and names offline access
    res = rp.follow(rp.authorize_url(scope="openid profile offline_access", code_challenge="x" * 43,
                                     code_challenge_method="S256"))
    html = res.response.text
    assert 'data-scope="offline_access"' in html and "while you are not using" in html


def test_discovery_lists_offline_access(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert "offline_access" in meta["scopes_supported"]


def test_cli_creates_client_with_offline_access(cli_env, db):
    r = cli_env("clients", "create", "--name", "Offline app", "--redirect-uri", RP_CALLBACK,
                "--scope", "openid profile offline_access", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["scope"] == "openid profile offline_access"


def test_migration_adds_offline_access_to_refresh_capable_clients(idp):
    from .conftest import register_client
    from idp.store.migrate import MIGRATIONS_DIR, load
    a, _ = register_client(idp.db, idp.config, "Old refresh", [RP_CALLBACK], scope="openid email")
    b, _ = register_client(idp.db, idp.config, "Old no refresh", [RP_CALLBACK], scope="openid email",
                           grant_types=["authorization_code"])
    path = next(MIGRATIONS_DIR.glob("*_oauth_offline_access.py"))
    mod = load(path)
    mod.up(idp.db)
    mod.up(idp.db)  # idempotent
    assert idp.db.clients.find_one({"_id": a["_id"]})["scope"] == "openid email offline_access"
    assert idp.db.clients.find_one({"_id": b["_id"]})["scope"] == "openid email"
