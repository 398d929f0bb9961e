"""Dynamic client registration (RFC 7591) with a wrongly typed ``backchannel_logout_uri`` (OpenID Connect
Back-Channel Logout 1.0 §2.2: a string) is a 400 ``invalid_client_metadata`` and registers nothing, never a 500."""
from __future__ import annotations

import pytest

from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401
from security.test_registration_metadata_types import OK_URI, _refused, reg  # noqa: F401


@pytest.mark.parametrize("value", [5, 1.5, True, ["https://rp.example/logout"], {"a": "b"}])
def test_backchannel_logout_uri_of_another_type(reg, value):  # noqa: F811
    _refused(reg, {"redirect_uris": [OK_URI], "backchannel_logout_uri": value}, "invalid_client_metadata")


@pytest.mark.parametrize("value", [5, "yes", ["x"], {"a": 1}])
def test_backchannel_logout_session_required_of_another_type(reg, value):  # noqa: F811
    _refused(reg, {"redirect_uris": [OK_URI], "backchannel_logout_session_required": value},
             "invalid_client_metadata")
