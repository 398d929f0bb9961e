"""The scopes this provider grants (the discovery document's ``scopes_supported``), one list for clients and tokens."""
from __future__ import annotations

SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
OFFLINE_ACCESS = "offline_access"  # OIDC Core 11: a refresh token is issued only when this scope is granted
