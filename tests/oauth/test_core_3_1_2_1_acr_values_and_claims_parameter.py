"""OpenID Connect Core 3.1.2.1 ``acr_values`` and 5.5 ``claims``. ``acr_values`` asks for the acr as a voluntary
claim: a value this provider cannot perform on request (``urn:deepauth:acr:pwd+otp``: a recovery code is a fallback
the user picks, never asked for; a value it does not know) is not refused, and the ID token's ``acr`` and ``amr`` say
what was done, never the value asked for. The ``claims`` parameter is not supported (discovery:
``claims_parameter_supported`` false): it is ignored as a whole, never half honoured - an essential ``acr`` in it
asks for no face, and a claim in it is not released beyond what the scope gives. (Only ``acr_values``
``urn:deepauth:acr:pwd+face`` is performed on request: ``test_core_3_1_2_6_unmet_authentication_requirements.py``,
``tests/faceweb/test_oidc_face.py``.)"""
from __future__ import annotations

import json

import pytest
import requests

from support.oidc import jwt_claims

ACR_PWD = "urn:deepauth:acr:pwd"


def _id_token_and_access(rp, **params) -> tuple[dict, str]:
    tok = rp.tokens(**params)
    return jwt_claims(tok["id_token"]), tok["access_token"]


@pytest.mark.parametrize("acr_values", ["urn:deepauth:acr:pwd+otp", "urn:example:loa:4",
                                        f"urn:example:loa:4 {ACR_PWD}"])
def test_acr_values_not_performed_on_request_leave_the_acr_of_what_was_done(idp, user, rp, acr_values):
    claims, _ = _id_token_and_access(rp, acr_values=acr_values)
    assert claims["acr"] == ACR_PWD and claims["amr"] == ["pwd"]


def test_the_claims_parameter_is_ignored_as_a_whole(idp, user, rp):
    asked = {"id_token": {"acr": {"essential": True, "values": ["urn:deepauth:acr:pwd+face"]},
                          "email": {"essential": True}},
             "userinfo": {"email": {"essential": True}, "phone_number": None}}
    claims, access = _id_token_and_access(rp, scope="openid", claims=json.dumps(asked))
    assert claims["acr"] == ACR_PWD and claims["amr"] == ["pwd"]  # no face asked for, none claimed
    assert "email" not in claims
    info = requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}).json()
    assert set(info) == {"sub"}


def test_discovery_says_what_is_supported(idp):
    meta = requests.get(f"{idp.url}/.well-known/openid-configuration").json()
    assert meta["claims_parameter_supported"] is False
    assert set(meta["acr_values_supported"]) == {ACR_PWD, "urn:deepauth:acr:pwd+face", "urn:deepauth:acr:pwd+otp"}
    assert {"acr", "amr"} <= set(meta["claims_supported"])
