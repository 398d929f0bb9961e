"""OpenID Connect Dynamic Client Registration 1.0 §2 metadata asking for what this provider does not do, checked
against its discovery document: ``subject_type`` ``pairwise`` (``subject_types_supported`` is ``["public"]``),
encrypted ID tokens or userinfo responses, signed userinfo responses (no ``*_encryption_*`` nor
``userinfo_signing_alg_values_supported`` member). Such a registration was answered 201 and the client then got
public subject identifiers, plain ID tokens and plain JSON from userinfo - what it had asked not to get. It is
refused with ``invalid_client_metadata`` (RFC 7591 §3.2.2; as ``jwks`` already was), nothing stored; values this
provider does use (``public``) are accepted."""
from __future__ import annotations

import pytest
import requests

from .conftest import register_metadata


@pytest.mark.parametrize("metadata", [
    {"subject_type": "pairwise"},
    {"id_token_encrypted_response_alg": "RSA-OAEP"},
    {"id_token_encrypted_response_alg": "RSA-OAEP", "id_token_encrypted_response_enc": "A128CBC-HS256"},
    {"userinfo_signed_response_alg": "RS256"},
    {"userinfo_encrypted_response_alg": "RSA-OAEP"},
    {"userinfo_encrypted_response_enc": "A128CBC-HS256"},
])
def test_oidc_registration_2_metadata_not_offered_is_refused(reg_idp, metadata):
    r = register_metadata(reg_idp, **metadata)
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", (metadata, r.status_code, r.text)
    assert reg_idp.db.clients.count_documents({}) == 0


def test_oidc_registration_2_metadata_offered_is_accepted(reg_idp):
    meta = requests.get(f"{reg_idp.url}/.well-known/openid-configuration").json()
    assert meta["subject_types_supported"] == ["public"]
    assert not any(k.startswith(("id_token_encryption", "userinfo_encryption", "userinfo_signing")) for k in meta)
    r = register_metadata(reg_idp, subject_type="public", id_token_signed_response_alg="ES256")
    assert r.status_code == 201, r.text
