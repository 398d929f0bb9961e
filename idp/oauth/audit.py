"""OAuth / OpenID Connect events for the shared audit log (``idp.audit``); no Flask import at module level.

Ids and outcomes only: never codes, tokens, secrets or their hashes. Callers that serve a request pass
``ip`` / ``user_agent`` (see ``request_context`` in the views); the services (tokens, clients) do not know
them. Auditing never breaks the flow it records: a failed write is only logged.
"""
from __future__ import annotations

import logging

log = logging.getLogger("idp.oauth")

CODE_ISSUED = "oauth.code_issued"
CONSENT_GRANTED = "oauth.consent_granted"
CONSENT_DENIED = "oauth.consent_denied"
CONSENT_REVOKED = "oauth.consent_revoked"
REFRESH_REUSE = "oauth.refresh_reuse"
CODE_REUSE = "oauth.code_reuse"
CLIENT_CREATED = "oauth.client_created"
CLIENT_DELETED = "oauth.client_deleted"
CLIENT_SECRET_ROTATED = "oauth.client_secret_rotated"
CLIENT_TOKEN_ISSUED = "oauth.client_credentials_token"
BACKCHANNEL_LOGOUT_FAILED = "oauth.backchannel_logout_failed"
EVENTS = (CODE_ISSUED, CONSENT_GRANTED, CONSENT_DENIED, CONSENT_REVOKED, REFRESH_REUSE, CODE_REUSE,
          CLIENT_CREATED, CLIENT_DELETED, CLIENT_SECRET_ROTATED, CLIENT_TOKEN_ISSUED, BACKCHANNEL_LOGOUT_FAILED)


def record(db, event: str, *, user_id: str | None = None, client_id: str | None = None, ip: str | None = None,
           user_agent: str | None = None, decision: str | None = None, details: dict | None = None) -> None:
    from idp import audit
    try:
        audit.record(db, event, user_id=user_id, client_id=client_id, ip=ip, user_agent=user_agent,
                     decision=decision, details=details)
    except Exception:  # auditing must never break a sign-in or a token request
        log.exception("audit write failed", extra={"event": event})


def request_context() -> dict:
    """``ip`` and ``user_agent`` of the current Flask request (empty outside one)."""
    from flask import has_request_context, request
    if not has_request_context():
        return {}
    return {"ip": request.remote_addr, "user_agent": request.user_agent.string}
