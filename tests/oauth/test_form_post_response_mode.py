"""OAuth 2.0 Form Post Response Mode: ``response_mode=form_post`` answers with an auto-submitting HTML form
POSTing the response parameters (code, state, iss, or an error) to the redirect URI; the page's CSP allows
only its own script (nonce) and form submission to the client's origin. Discovery lists the mode."""
from __future__ import annotations

import html as htmlmod
import re

import requests

import pytest

from .conftest import RP, RP_CALLBACK, register_client


def _form(resp) -> tuple[str, dict]:
    html = resp.text
    action = htmlmod.unescape(re.search(r'<form method="post" action="([^"]+)"', html).group(1))
    fields = {htmlmod.unescape(n): htmlmod.unescape(v)
              for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html)}
    return action, fields


def test_discovery_lists_form_post(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["response_modes_supported"] == ["query", "form_post"]


def test_code_is_posted_to_the_redirect_uri(idp, user, rp):
    res, verifier = rp.sign_in_for_code(response_mode="form_post", state="s-<&>\"")
    assert res.location is None and res.response.status_code == 200
    action, fields = _form(res.response)
    assert action == RP_CALLBACK
    assert fields["state"] == "s-<&>\"" and fields["iss"] == idp.url and fields["code"]
    csp = res.response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in res.response.text
    assert "form-action https://rp.example;" in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    tok = rp.redeem(fields["code"], verifier)
    assert tok.status_code == 200, tok.text


def test_denied_consent_is_posted_too(idp, user, rp):
    res = rp.follow(rp.authorize_url(response_mode="form_post", state="st", code_challenge="x" * 43,
                                     code_challenge_method="S256"))
    res = rp.login(res)
    res = rp.consent(res, decision="deny")
    action, fields = _form(res.response)
    assert action == RP_CALLBACK
    assert (fields["error"], fields["state"], fields["iss"]) == ("access_denied", "st", idp.url)


def test_prompt_none_error_is_posted(idp, user, rp):
    res = rp.follow(rp.authorize_url(response_mode="form_post", prompt="none", state="st"))
    action, fields = _form(res.response)
    assert action == RP_CALLBACK and fields["error"] == "login_required" and fields["state"] == "st"


def test_unknown_response_mode_refused_in_the_query(idp, user, rp):
    res = rp.follow(rp.authorize_url(response_mode="fragment", state="st"))
    assert res.location and res.location.startswith(RP_CALLBACK + "?")
    assert res.params["error"] == "invalid_request" and res.params["state"] == "st"


def test_unregistered_redirect_uri_never_gets_a_form(idp, user, rp):
    res = rp.follow(rp.authorize_url(response_mode="form_post", redirect_uri="https://evil.example/cb"))
    assert res.response.status_code == 400 and "evil.example" not in res.response.text


@pytest.mark.parametrize("host", ["rp.example;sandbox", "rp.example;script-src", "rp.example'", "rp.example,x"])
def test_a_redirect_uri_host_cannot_end_the_form_action_directive(idp, host):
    """The form's CSP names the redirect URI's origin: a host with ``;`` ended ``form-action`` and started a
    directive of the registrant's choosing. Refused at registration (dynamic registration and the admin pages
    use the same check); a client stored with such a URI before gets a form its CSP lets post nowhere, the
    directives unchanged."""
    from idp.oauth.clients import ClientError, create_client, invalidate
    uri = f"https://{host}/cb"
    with pytest.raises(ClientError, match="plain host name"):
        create_client(idp.db, idp.config, "X", [uri])
    doc, secret = register_client(idp.db, idp.config, "Old client", [RP_CALLBACK])
    idp.db.clients.update_one({"_id": doc["client_id"]}, {"$set": {"redirect_uris": [uri]}})  # before the check
    invalidate(idp.db, doc["client_id"])
    rp = RP(idp, doc["client_id"], secret, redirect_uri=uri)
    res = rp.follow(rp.authorize_url(prompt="none", response_mode="form_post"))
    assert res.response.status_code == 200 and 'name="error" value="login_required"' in res.response.text
    csp = res.response.headers["Content-Security-Policy"]
    directives = [d.split()[0] for d in csp.split(";") if d.split()]
    assert sorted(directives) == ["base-uri", "default-src", "form-action", "frame-ancestors", "script-src"], csp
    assert "form-action 'none'" in csp, csp
