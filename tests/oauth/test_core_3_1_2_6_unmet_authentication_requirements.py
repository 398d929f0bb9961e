"""OpenID Connect Core 3.1.2.6 (Authentication Error Response) with the error code of "OpenID Connect Core
Error Code unmet_authentication_requirements": with face sign-in off (``IDP_FACE_ENABLED=false``, the
``idp`` fixture), a request that needs the face — its client's face policy is "required", or its
``acr_values`` ask for ``urn:deepauth:acr:pwd+face`` — is answered at the client's redirect URI with
``error=unmet_authentication_requirements`` (and ``state``, ``iss``, an ``error_description``), audited,
and never with a code: no password-only sign-in for a request that needs the face."""
from __future__ import annotations

import json

import pytest

from .conftest import RP, RP_CALLBACK

UNMET = "unmet_authentication_requirements"
ACR_FACE = "urn:deepauth:acr:pwd+face"


@pytest.fixture
def required_rp(idp):
    """A client with the provider's default face policy, "required" (nothing passed)."""
    from idp.oauth.clients import create_client
    doc, secret = create_client(idp.db, idp.config, "Face RP", [RP_CALLBACK])
    assert doc["face_policy"] == "required"
    return RP(idp, doc["client_id"], secret)


def _nothing_issued(idp, client_id: str) -> None:
    assert idp.db.auth_codes.count_documents({"client_id": client_id}) == 0
    assert idp.db.tokens.count_documents({"client_id": client_id}) == 0
    assert idp.db.audit_log.count_documents({"event": "oauth.code_issued", "client_id": client_id}) == 0


def _refused(res, state: str) -> None:
    assert res.location and res.location.startswith(RP_CALLBACK + "?"), res.response.text[:300]
    assert res.params["error"] == UNMET, res.params
    assert "code" not in res.params and res.params["state"] == state
    assert "face sign-in is turned off" in res.params["error_description"]


def test_required_client_is_refused_before_the_password(idp, user, required_rp):
    res, _ = required_rp.sign_in_for_code(state="st-1")
    _refused(res, "st-1")
    assert "face policy is required" in res.params["error_description"]
    assert res.params["iss"] == idp.url
    # refused at once: the user was never asked for a password that could not lead anywhere
    assert not any("/login" in r.url for r in res.response.history + [res.response])
    _nothing_issued(idp, required_rp.client_id)
    entry = idp.db.audit_log.find_one({"event": "oauth.authentication_unmet"})
    assert entry["client_id"] == required_rp.client_id and entry["decision"] == "refused"
    assert entry["reasons"] == ["face"] and entry["user_id"] is None


def test_required_client_refused_for_a_signed_in_user_also_with_prompt_none(idp, user, rp, required_rp):
    rp.tokens()  # alice signs in (password only) at a face-optional client
    required_rp.browser = rp.browser  # same browser, same session
    res, _ = required_rp.sign_in_for_code(state="st-2")
    _refused(res, "st-2")
    res = required_rp.follow(required_rp.authorize_url(prompt="none", state="st-3"))
    _refused(res, "st-3")
    _nothing_issued(idp, required_rp.client_id)
    entries = list(idp.db.audit_log.find({"event": "oauth.authentication_unmet"}))
    assert len(entries) == 2 and {e["user_id"] for e in entries} == {user["_id"]}


def test_optional_client_still_signs_in_with_the_password_alone(idp, user, rp):
    res, verifier = rp.sign_in_for_code()
    assert "code" in res.params, res.params
    claims = rp.redeem(res.params["code"], verifier).json()
    from support.oidc import jwt_claims
    id_token = jwt_claims(claims["id_token"])
    assert id_token["amr"] == ["pwd"] and id_token["acr"] == "urn:deepauth:acr:pwd"
    assert idp.db.audit_log.count_documents({"event": "oauth.authentication_unmet"}) == 0


def test_acr_values_asking_for_the_face_are_refused_on_an_optional_client(idp, user, rp):
    """acr_values are honoured as the code honours them with face sign-in on (the face step is then
    required whatever else the request holds), so here the request cannot be met."""
    for acr in (ACR_FACE, f"urn:deepauth:acr:pwd {ACR_FACE}"):
        res, _ = rp.sign_in_for_code(state="st-4", acr_values=acr)
        _refused(res, "st-4")
        assert ACR_FACE in res.params["error_description"]
    _nothing_issued(idp, rp.client_id)
    entries = list(idp.db.audit_log.find({"event": "oauth.authentication_unmet"}))
    assert {e["client_id"] for e in entries} == {rp.client_id}
    assert sorted(e["details"]["acr_values"] for e in entries) == sorted([ACR_FACE, f"urn:deepauth:acr:pwd {ACR_FACE}"])


def test_form_post_response_mode_carries_the_error(idp, user, required_rp):
    res = required_rp.follow(required_rp.authorize_url(response_mode="form_post", state="st-5"))
    assert res.location is None and res.response.status_code == 200
    html = res.response.text
    assert f'action="{RP_CALLBACK}"' in html and f'value="{UNMET}"' in html and 'name="code"' not in html
    _nothing_issued(idp, required_rp.client_id)


def test_client_made_required_during_the_sign_in(idp, user, rp):
    """The policy is read again at every step: a client switched to "required" while its user is on the
    login page, or on the consent page, gets the error, not a code."""
    from idp.oauth.clients import update_client

    page = rp.follow(rp.authorize_url(state="st-6"))
    assert "/login" in page.response.url
    update_client(idp.db, rp.client_id, face_policy="required")
    res = rp.login(page)  # the password is right; the face step that must follow cannot be performed
    _refused(res, "st-6")

    update_client(idp.db, rp.client_id, face_policy="optional")
    page = rp.follow(rp.authorize_url(state="st-7"))  # signed in already: straight to the consent page
    assert '/authorize/consent"' in page.response.text
    update_client(idp.db, rp.client_id, face_policy="required")
    res = rp.consent(page)
    _refused(res, "st-7")
    _nothing_issued(idp, rp.client_id)


def test_cli_warns_about_required_clients_while_face_is_off(idp, required_rp, rp, monkeypatch):
    from click.testing import CliRunner

    from idp.cli import cli
    monkeypatch.setenv("MONGODB_URI", idp.config.mongodb_uri)
    monkeypatch.setenv("IDP_DB_NAME", idp.config.db_name)
    monkeypatch.setenv("IDP_DATA_DIR", str(idp.config.data_dir))
    monkeypatch.setenv("IDP_FACE_ENABLED", "false")
    runner = CliRunner()
    out = runner.invoke(cli, ["clients", "list"], catch_exceptions=False)
    assert out.exit_code == 0
    assert "1 client(s) with face policy 'required' cannot sign anyone in" in out.stderr
    assert required_rp.client_id in out.stderr and rp.client_id not in out.stderr
    out = runner.invoke(cli, ["clients", "face-policy", required_rp.client_id, "optional"], catch_exceptions=False)
    assert out.exit_code == 0 and not out.stderr
    assert runner.invoke(cli, ["clients", "list"], catch_exceptions=False).stderr == ""
    res, _ = required_rp.sign_in_for_code()
    assert res.location is None and "/login" in res.response.url  # now a password-only client
    out = runner.invoke(cli, ["clients", "create", "--name", "New", "--redirect-uri", RP_CALLBACK, "--json"],
                        catch_exceptions=False)
    assert out.exit_code == 0 and "cannot sign anyone in" in out.stderr
    assert json.loads(out.stdout)["face_policy"] == "required"
    # a disabled client signs nobody in anyway: not named
    runner.invoke(cli, ["clients", "disable", json.loads(out.stdout)["client_id"]], catch_exceptions=False)
    assert runner.invoke(cli, ["clients", "list"], catch_exceptions=False).stderr == ""
    monkeypatch.setenv("IDP_FACE_ENABLED", "true")
    out = runner.invoke(cli, ["clients", "face-policy", required_rp.client_id, "required"], catch_exceptions=False)
    assert out.exit_code == 0 and not out.stderr
    assert runner.invoke(cli, ["clients", "list"], catch_exceptions=False).stderr == ""  # face on: no warning



def test_start_up_warns_about_required_clients_while_face_is_off(idp, required_rp, rp, make_server, caplog):
    """The operator sees it in the log at start-up, not only from refused users (enabled clients only)."""
    import logging

    from idp.oauth.clients import disable_client, enable_client
    with caplog.at_level(logging.WARNING, logger="idp.oauth"):
        make_server()
    warned = [r for r in caplog.records if "cannot sign anyone in" in r.getMessage()]
    assert len(warned) == 1 and "1 client(s)" in warned[0].getMessage()
    caplog.clear()
    disable_client(idp.db, required_rp.client_id)
    with caplog.at_level(logging.WARNING, logger="idp.oauth"):
        make_server()  # its only required client is disabled
    enable_client(idp.db, required_rp.client_id)
    with caplog.at_level(logging.WARNING, logger="idp.oauth"):
        make_server(face_enabled=True)  # face on: required clients are fine
    assert not [r for r in caplog.records if "cannot sign anyone in" in r.getMessage()]
