"""RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted from the request." A
relying party that always sends ``response_mode`` (empty unless set) got ``invalid_request`` ("Unsupported
'response_mode'"); the other optional parameters were already read this way, and stay so."""
from __future__ import annotations

import pytest

from .conftest import RP_CALLBACK


@pytest.mark.parametrize("name", ["response_mode", "state", "prompt", "nonce", "max_age", "login_hint", "acr_values",
                                  "id_token_hint", "request", "request_uri", "claims", "ui_locales", "display"])
def test_rfc6749_3_1_an_empty_optional_parameter_is_as_if_omitted(idp, user, rp, name):
    rp.tokens()  # signed in, consent given: the answer comes at once
    res, verifier = rp.sign_in_for_code(**{name: ""})
    assert res.location and res.location.startswith(RP_CALLBACK + "?"), res.response.text[:300]
    assert res.params.get("code"), (name, res.params)
    if name == "state":
        assert "state" not in res.params  # omitted: nothing to echo
    assert rp.redeem(res.params["code"], verifier).status_code == 200
