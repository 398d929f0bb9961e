"""The Authlib authorization server, wired to our MongoDB repositories.

Small subclasses with explicit hooks: authorization code (+ S256-only PKCE, + OpenID Connect),
refresh token (rotation in one atomic update), userinfo, revocation, introspection, RP-initiated
logout and dynamic client registration.
"""
from __future__ import annotations

import base64
import binascii
import logging
import secrets
import time
from datetime import datetime, timezone

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc6749.errors import (InvalidClientError, InvalidGrantError, InvalidRequestError, InvalidScopeError,
                                          UnsupportedGrantTypeError, UnsupportedResponseTypeError,
                                          UnsupportedTokenTypeError)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc6750.errors import InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc6749.requests import JsonPayload
from authlib.oauth2.rfc7591 import ClientMetadataClaims, ClientRegistrationEndpoint, InvalidClientMetadataError
from authlib.oauth2.rfc7591.errors import InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter as _IssuerParameter
from authlib.oidc.core import OpenIDCode, UserInfo, UserInfoEndpoint
from authlib.oidc.core.util import create_half_hash
from authlib.oidc.rpinitiated import ClientMetadataClaims as LogoutMetadataClaims
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import request as flask_request
from joserfc import jwt

from idp import audit
from idp.web.bearer import matches, sent_token
from . import clients as clients_service
from . import tokens as tokens_repo
from .models import AuthCode, Client, Token, UserRef
from .scopes import OFFLINE_ACCESS, SUPPORTED_SCOPES

log = logging.getLogger("idp.oauth")

# How far ahead of this instance's clock the time claims of a token we signed may lie (the instances' clocks differ
# a little); RFC 7519 4.1.4: "usually no more than a few minutes".
CLOCK_LEEWAY_S = 60


class _HintClaims(jwt.JWTClaimsRegistry):
    """The time claims of an ``id_token_hint``: ``exp`` is not checked (a hint is an earlier ID token, RP-Initiated
    Logout 1.0 §2), ``iat`` and ``nbf`` must not lie beyond the leeway in the future."""

    def validate_exp(self, value) -> None:
        pass


# --- requests ------------------------------------------------------------------------------

class IdPRequest(OAuth2Request):
    """An OAuth2Request whose URI is built from the configured issuer (TLS may end at a proxy), made
    from the current Flask request or from stored authorization parameters."""

    def __init__(self, issuer: str, method: str, path: str, headers, data: dict | None = None,
                 form=None, args=None):
        super().__init__(method, issuer + path, headers=headers)
        self._args = args if args is not None else (data or {})
        self._form = form if form is not None else {}
        self.payload = BasicOAuth2Payload(data or {}) if data is not None else None
        self.confirmed = False

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


def _flask_payload(req):
    from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
    return FlaskOAuth2Payload(req)


# --- claims -----------------------------------------------------------------------------------

def _ts(value) -> int | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    return value if isinstance(value, int) else None


def user_claims(user: UserRef, scope: str) -> UserInfo:
    """Standard claims of ``user`` allowed by ``scope`` (sub always)."""
    doc = user.doc or {}
    scopes = set((scope or "").split())
    info = UserInfo(sub=user.id)
    if "profile" in scopes:
        info["name"] = doc.get("name") or doc.get("username")
        info["preferred_username"] = doc.get("username")
        updated = _ts(doc.get("updated_at") or doc.get("created_at"))
        if updated is not None:
            info["updated_at"] = updated
    if "email" in scopes and doc.get("email"):
        info["email"] = doc["email"]
        info["email_verified"] = bool(doc.get("email_verified"))
    if "phone" in scopes and doc.get("phone"):
        info["phone_number"] = doc["phone"]
        info["phone_number_verified"] = bool(doc.get("phone_verified"))
    return info


# --- grants and extensions ----------------------------------------------------------------

AUTH_METHODS = [*clients_service.SECRET_AUTH_METHODS, "none"]


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def generate_authorization_code(self):
        return secrets.token_urlsafe(32)

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Authlib's refusal quotes the URI in the error description, which may hold only printable
        ASCII (a URI with a control character made building the error itself fail); ours does not."""
        uri = request.payload.redirect_uri
        if uri and not client.check_redirect_uri(uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def validate_requested_scope(self):
        """OpenID Connect Core 3.1.2.1 / 5.4: "Scope values used that are not understood by an implementation SHOULD be
        ignored". Authlib's check refuses the whole request (``invalid_scope``) for a value not in ``scopes_supported``;
        here such a value is left out as one the client is not registered for is, by ``Client.get_allowed_scope``, which
        Authlib applies next (``request.scope``: what the consent page, the code and the tokens carry; the token
        response's ``scope`` names it, RFC 6749 3.3). Nothing left with ``openid`` is still ``invalid_scope``."""

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        """Tokens for the code's ``scope`` limited to what the client may hold as stored now (its
        ``get_allowed_scope``, as Authlib's token generator applies it): a scope the operator took from the client
        after the code was issued is in neither the tokens, the answer, nor the ID token's claims (which read the
        answer's scope); nothing left (no ``openid``) is ``invalid_scope``. Token values carry their family id
        (see idp.oauth.tokens), fixed when the code was redeemed; the family is stored in save_token."""
        scope = BearerTokenGenerator.get_allowed_scope(self.request.client, scope)
        code = getattr(self.request, "authorization_code", None)
        family = (code.doc.get("family") if code is not None else None) or tokens_repo.new_family()
        self.request.token_family = family
        token = {"token_type": "Bearer", "access_token": tokens_repo.make_token(family),
                 "expires_in": self.server.config.access_token_lifetime_s, "scope": scope}
        # OpenID Connect Core 11: a refresh token only when offline_access was requested and granted
        if include_refresh_token and OFFLINE_ACCESS in (scope or "").split():
            token["refresh_token"] = tokens_repo.make_token(family)
        return token

    def save_authorization_code(self, code, request):
        from idp.signin import auth_state
        state = auth_state()
        data = request.payload.data
        tokens_repo.save_code(
            self.server.db, self.server.config, code, client_id=request.client.get_client_id(),
            user_id=request.user.id, redirect_uri=request.payload.redirect_uri, scope=request.scope,
            nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method") if data.get("code_challenge") else None,
            auth_time=state.auth_time, amr=state.amr, acr=state.acr, sid=state.sid,
            request_id=getattr(request, "pending_rid", None))
        from idp.web.sessions import sign_in_lives
        if state.sid and not sign_in_lives(request.user.id, state.sid):
            # signed out meanwhile (another tab), maybe before this code was stored: it ends with the sign-in
            tokens_repo.end_session_grants(self.server.db, request.user.id, state.sid)
        from .backchannel import remember
        remember(self.server.db, self.server.config, request.client.doc, request.user.id, state.sid)
        if request.client.doc.get("backchannel_logout_uri"):
            from flask import current_app
            current_app.extensions["oauth_backchannel"].ensure_started()
        client_id = request.client.get_client_id()
        scopes, amr = (request.scope or "").split(), list(state.amr or [])
        # what the code grants is part of the key: a code for other scopes or methods is always on record
        audit.record(self.server.db, audit.CODE_ISSUED, user_id=request.user.id, client_id=client_id,
                     decision="issued", details={"scopes": scopes, "amr": amr, "acr": state.acr},
                     **audit.ordinary_use(request.user.id, client_id, " ".join(sorted(scopes)), " ".join(amr)),
                     **audit.request_context())

    def query_authorization_code(self, code, client):
        doc = tokens_repo.find_code(self.server.db, code, client.get_client_id())  # read only
        return AuthCode(doc) if doc else None

    def validate_token_request(self):
        """Authlib's checks (client, code, redirect_uri, and PKCE in its after-validation hook) run on the
        code as read; the code is consumed only when all of them passed. So a wrong verifier or redirect_uri
        leaves the code usable by its rightful holder, and only a fully valid second redemption counts as
        reuse (revoking what the first one got); the compare-and-set in ``consume_code`` keeps redemption
        exactly-once under concurrency. The code's redirect URI must still be registered for the client (read
        fresh by client authentication): a URI the operator removed takes its codes with it."""
        super().validate_token_request()
        issued_to = self.request.authorization_code.get_redirect_uri()
        if issued_to and not self.request.client.check_redirect_uri(issued_to):
            raise InvalidGrantError("The code's redirect_uri is no longer registered for this client.")
        doc = tokens_repo.consume_code(self.server.db, self.request.authorization_code.doc,
                                       context=audit.request_context)
        if doc is None:
            raise InvalidGrantError("Invalid 'code' in request.")
        if doc.get("request_id"):  # the browser is no longer sent this code (its client would present it twice)
            from idp.web.sessions import forget_answer
            forget_answer(self.server.db, doc["request_id"])
        self.request.authorization_code = AuthCode(doc)

    def delete_authorization_code(self, authorization_code):
        pass  # marked used on redemption (validate_token_request); the TTL index purges it

    def authenticate_user(self, authorization_code):
        """The code's account; None (``invalid_grant``, no tokens stored) when it is gone or may not sign in
        (``users.may_sign_in``: disabled, or a deletion has claimed it and is erasing its tokens)."""
        from idp.accounts.users import usable_account
        doc = usable_account(self.server.db, authorization_code.user_id)
        return UserRef(doc["_id"], doc) if doc else None


class S256CodeChallenge(CodeChallenge):
    """PKCE: S256 only; required for public clients, accepted for confidential ones."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge:
            if method:
                raise InvalidRequestError("Missing 'code_challenge'.")
            if grant.request.client.public:
                raise InvalidRequestError("Public clients must use PKCE (code_challenge with S256).")
            return
        if method != "S256":
            raise InvalidRequestError("Only the S256 code_challenge_method is supported.")
        return super().validate_code_challenge(grant, redirect_uri)


class OpenIDConnect(OpenIDCode):
    """ID tokens signed with our keys (kid in the header), carrying amr/acr/auth_time/nonce from the code."""

    def __init__(self, server):
        super().__init__(require_nonce=False)
        self.server = server

    def __call__(self, grant):
        # prompt handling lives in the authorize view; only the nonce check and the ID token here
        grant.register_hook("after_create_token_response", self.process_token)
        grant.register_hook("after_validate_authorization_request_payload",
                            self.validate_openid_authorization_request)

    def exists_nonce(self, nonce, request):
        return False

    def generate_user_info(self, user, scope):
        return user_claims(user, scope)

    def encode_id_token(self, token, request):
        code = request.authorization_code
        return self.server.sign_id_token(
            request.client, request.user, token.get("scope", ""), access_token=token.get("access_token"),
            nonce=code.get_nonce(), auth_time=code.get_auth_time(), acr=code.get_acr(), amr=code.get_amr(),
            sid=code.doc.get("sid"))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh with rotation: the old refresh token is swapped for a new one atomically; reusing an
    old one revokes the family. One user lookup (the account may still sign in), no signature on this path. As
    in Authlib's grant, a requested scope must lie within the granted one and what is issued is limited by the client's
    ``get_allowed_scope`` (the client as stored now): a grant its client may no longer hold in full is
    narrowed, or revoked without ``offline_access`` (``tokens.rotate_refresh``)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        doc, error, issued = tokens_repo.rotate_refresh(
            self.server.db, self.server.config, refresh_token, self.request.client.get_client_id(),
            scope=self.request.payload.scope, allowed=self.request.client.get_allowed_scope,
            context=audit.request_context)
        if error == "invalid_scope":
            raise InvalidScopeError()
        if doc is None:
            return None
        self._issued = issued
        return Token(doc, "refresh_token")

    def _validate_token_scope(self, token):
        pass  # checked atomically in rotate_refresh

    def authenticate_user(self, refresh_token):
        """The token's account while it may sign in (``users.may_sign_in``); else its family is revoked (what
        disabling or deleting the account does in a later write, which a request that died may have left
        undone) and the grant is ``invalid_grant``."""
        from idp.accounts.users import usable_account
        doc = usable_account(self.server.db, refresh_token.user_id)
        if doc is None:
            tokens_repo.revoke_family(self.server.db, refresh_token.doc["_id"], reason="account_unusable")
            raise InvalidGrantError("The account of this grant may no longer sign in.")
        return UserRef(refresh_token.user_id, doc)

    def issue_token(self, user, refresh_token):
        access, refresh = self._issued
        token = {"token_type": "Bearer", "access_token": access, "refresh_token": refresh,
                 "expires_in": self.server.config.access_token_lifetime_s}
        if refresh_token.scope:  # narrowed (asked for, or to the client's scopes); else the granted one (5.1: omitted)
            token["scope"] = refresh_token.scope
        return token

    def save_token(self, token):
        pass  # stored by the rotation itself

    def revoke_old_credential(self, refresh_token):
        pass  # the rotation already retired it


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 4.4 for confidential clients registered with the grant: an access token for the client
    itself (no user, no ID token, no refresh token), scoped to its registered scopes minus openid and
    offline_access; stored like any token family (``user_id`` None) and audited."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(clients_service.SECRET_AUTH_METHODS)

    def validate_requested_scope(self):
        scope = clients_service.machine_scope(self.request.client.doc, self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError()
        self.request.granted_scope = scope

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=False):
        family = tokens_repo.new_family()
        self.request.token_family = family
        token = {"token_type": "Bearer", "access_token": tokens_repo.make_token(family),
                 "expires_in": self.server.config.access_token_lifetime_s}
        if self.request.granted_scope:
            token["scope"] = self.request.granted_scope
        return token

    def save_token(self, token):
        """Store the token, then read the client again: one disabled or deleted while this request ran (it
        authenticated the client just before) may have revoked the client's tokens before this one was stored,
        which would come alive when the client is enabled again. Then the token is revoked and the client gets
        none (``invalid_client``, as its next request would)."""
        client_id = self.request.client.get_client_id()
        tokens_repo.issue(self.server.db, self.server.config, family=self.request.token_family,
                          client_id=client_id, user_id=None, scope=token.get("scope") or "",
                          access_token=token["access_token"], refresh_token=None, auth_time=None, amr=[],
                          acr=None)
        if self.server.query_client_fresh(client_id) is None:
            tokens_repo.revoke_family(self.server.db, self.request.token_family, reason="client_disabled")
            log.warning("client disabled before its token was stored", extra={"client_id": client_id})
            raise InvalidClientError(description="The client is disabled.", status_code=401)
        audit.record(self.server.db, audit.CLIENT_TOKEN_ISSUED, client_id=client_id, decision="issued",
                     details={"scopes": (token.get("scope") or "").split()}, **audit.ordinary_use("client", client_id),
                     **audit.request_context())
        log.info("tokens issued", extra={"client_id": client_id, "grant": "client_credentials"})


class IssuerParameter(_IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response redirect. Authlib adds it to the responses of
    ``create_authorization_response`` (codes, consent denied); ``add_to`` is used for the error
    redirects our authorize view sends itself."""

    def __init__(self, config):
        self.config = config

    def get_issuer(self) -> str:
        return self.config.issuer  # read per response (the issuer can be set after start-up in tests)

    def add_to(self, response):
        self.add_issuer_parameter(None, response)
        return response


# --- token lookups shared by the endpoints ------------------------------------------------

def _query_token(server, token_string, hint):
    db = server.db
    order = ("refresh_token", "access_token") if hint == "refresh_token" else ("access_token", "refresh_token")
    for kind in order:
        doc = tokens_repo.find_token(db, token_string, kind)
        if doc:
            return Token(doc, kind, db, server.query_client)
    return None


class _Challenged:
    """RFC 6750 §3: a refusal of a bearer-protected request whose token does not enable access carries a
    ``WWW-Authenticate: Bearer`` challenge naming its error code (§3.1), as Authlib's ``InvalidTokenError`` (401)
    does; mixed into the other two refusals, which Authlib answers without one."""

    challenge_attributes: dict = {}

    def get_headers(self):
        params = [f'error="{self.error}"', *(f'{k}="{v}"' for k, v in self.challenge_attributes.items())]
        return [*super().get_headers(), ("WWW-Authenticate", "Bearer " + ", ".join(params))]


class _InsufficientScope(_Challenged, InsufficientScopeError):
    """403 ``insufficient_scope`` with its challenge (and the ``scope`` needed, which §3.1 allows)."""

    def __init__(self, scopes):
        super().__init__()
        self.challenge_attributes = {"scope": " ".join(scopes)} if scopes else {}


class _BearerInvalidRequest(_Challenged, InvalidRequestError):
    """400 ``invalid_request`` at a bearer-protected endpoint, with its challenge."""


class BearerValidator(BearerTokenValidator):
    def __init__(self, server):
        super().__init__()
        self.server = server

    def authenticate_token(self, token_string):
        doc = tokens_repo.find_by_access(self.server.db, token_string)
        return Token(doc, "access_token", self.server.db, self.server.query_client) if doc else None

    def validate_token(self, token, scopes, request):
        try:
            super().validate_token(token, scopes, request)
        except InsufficientScopeError:
            raise _InsufficientScope(scopes) from None


class NoBearerTokenError(OAuth2Error):
    """RFC 6750 §3.1: a request carrying no bearer token at all (none sent, only in the query, or another
    scheme) gets 401 and a bare ``Bearer`` challenge: no error code, since the client may not have known
    that authentication was needed."""

    error = "missing_authorization"
    description = "An access token is required (Authorization: Bearer)."
    status_code = 401

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", "Bearer")]


class BearerProtector(ResourceProtector):
    """RFC 6750: the access token in the ``Authorization: Bearer`` header (2.1) or, on a POST with a
    form-encoded body, in its ``access_token`` field (2.2). Never from the query string (2.3: it ends up in
    logs and Referer headers). Both at once is an ``invalid_request`` (RFC 6750 2: one method only). No bearer
    token at all is ``NoBearerTokenError``."""

    def parse_request_authorization(self, request):
        req = flask_request
        body_token = None
        if req.method == "POST" and req.mimetype == "application/x-www-form-urlencoded":
            body_token = req.form.get("access_token")
        if body_token is not None:
            if req.headers.get("Authorization") or len(req.form.getlist("access_token")) > 1:
                raise _BearerInvalidRequest("Send the access token in one place only.")
            return self.get_token_validator("bearer"), body_token
        if sent_token(req.headers.get("Authorization")) is None:
            raise NoBearerTokenError()
        return super().parse_request_authorization(request)


class IdPUserInfoEndpoint(UserInfoEndpoint):
    def generate_user_info(self, user, scope):
        if user is None:
            raise InvalidTokenError()
        return user_claims(user, scope)

    def get_issuer(self):
        return self.server.config.issuer


class _UnsupportedTokenType(UnsupportedTokenTypeError):
    """RFC 7009 §2.2.1 ``unsupported_token_type`` with status 400 (RFC 6749 §5.2); Authlib's class answers 401,
    which tells a client whose credentials were right that they were not."""

    status_code = 400


class _TokenTypeHint:
    """RFC 7009 §2.1 / RFC 7662 §2.1 for both endpoints: a ``token_type_hint`` other than ``access_token`` or
    ``refresh_token`` is ``_UnsupportedTokenType`` (400)."""

    def check_params(self, request, client):
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise _UnsupportedTokenType()
        return super().check_params(request, client)


class Revocation(_TokenTypeHint, RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_token(self, request, client):
        """As Authlib's, but a token issued to another client is answered as an invalid one (RFC 7009 §2.2: 200,
        nothing revoked) rather than with ``invalid_grant``: told apart, the answers made the endpoint an oracle
        telling any client whether a string is (or was) a token of someone else - the one place where a
        confidential client's refresh token could be checked without its client's credentials. For the
        presenting client such a string is not a token it holds, so nothing of it is revoked; the presentation
        is logged (a client holding another's token is a leak), without the token."""
        try:
            return super().authenticate_token(request, client)
        except InvalidGrantError:
            log.warning("revocation of another client's token refused",
                        extra={"client_id": client.get_client_id()})
            return None

    def query_token(self, token_string, token_type_hint):
        return _query_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token, request):
        tokens_repo.revoke_family(self.server.db, token.doc["_id"], reason="client_revoked")


class Introspection(_TokenTypeHint, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(clients_service.SECRET_AUTH_METHODS)

    def query_token(self, token_string, token_type_hint):
        return _query_token(self.server, token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return token.client_id == client.get_client_id() or bool(client.doc.get("can_introspect"))

    def introspect_token(self, token):
        doc = token.doc
        out = {
            "active": True, "client_id": token.client_id, "scope": token.get_scope(), "sub": token.user_id,
            "aud": token.client_id, "iss": self.server.config.issuer, "exp": _ts(token.expires_at),
            "iat": _ts(doc.get("rotated_at") or doc.get("issued_at")), "token_type":
                "Bearer" if token.kind == "access_token" else "refresh_token",
        }
        if out["sub"] is None:  # a client_credentials token: no resource owner
            del out["sub"]
        for claim in ("auth_time", "acr", "amr"):
            if doc.get(claim):
                out[claim] = doc[claim]
        return out


class EndSession(EndSessionEndpoint):
    def _validate_id_token_hint(self, id_token_hint):
        """Authlib's reading of the hint replaced by ours (``IdPAuthorizationServer.id_token_hint_claims``, the one
        reading of a hint): Authlib's allows no leeway on ``iat``, so a hint signed by an instance whose clock runs a
        second ahead was refused; ours allows ``CLOCK_LEEWAY_S``. A hint that is not ours, or that the JWS library
        cannot even parse (a malformed header raised a ``TypeError``, a 500), is ``invalid_request``."""
        claims = self.server.id_token_hint_claims(id_token_hint)
        if claims is None:
            raise InvalidRequestError("The id_token_hint is not an ID token of this provider.")
        return claims

    def get_server_jwks(self):
        return self.server.keys.public_keyset()

    def get_algorithms(self):
        return list(clients_service.ID_TOKEN_ALGS)

    def end_session(self, end_session_request):
        from idp.signin import sign_out
        sign_out()

    def is_post_logout_redirect_uri_legitimate(self, request, post_logout_redirect_uri, client, logout_hint):
        # without an ID token hint, redirect only after the user confirmed on our page
        return bool(getattr(request, "confirmed", False))


def oauth_text(text) -> str:
    """``text`` made fit for an OAuth ``error_description``: printable ASCII without '"' and '\\'
    (RFC 6749 §5.2); anything else becomes '?'. Authlib refuses to build an error with other characters."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in str(text))


# RFC 7591 §2 / OpenID client metadata (Back-Channel Logout 1.0 §2.2 too) with the JSON type each member must
# have (others are ignored).
_STRING_METADATA = frozenset({"client_name", "client_uri", "logo_uri", "scope", "tos_uri", "policy_uri", "jwks_uri",
                              "software_id", "software_version", "software_statement", "token_endpoint_auth_method",
                              "id_token_signed_response_alg", "backchannel_logout_uri"})
_BOOLEAN_METADATA = frozenset({"backchannel_logout_session_required"})
# OpenID Connect Registration 1.0 §2 members for responses this provider does not produce (discovery names no
# encryption algorithms and no userinfo_signing_alg_values_supported)
_UNOFFERED_METADATA = ("id_token_encrypted_response_alg", "id_token_encrypted_response_enc",
                       "userinfo_signed_response_alg", "userinfo_encrypted_response_alg",
                       "userinfo_encrypted_response_enc")
_STRING_LIST_METADATA = frozenset({"redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types",
                                   "contacts"})


class _MetadataPayload(JsonPayload):
    def __init__(self, data: dict):
        self._data = data

    @property
    def data(self):
        return self._data


def checked_metadata(data) -> dict:
    """The registration request's metadata, checked for shape before Authlib reads it: a JSON object whose
    known members have their RFC 7591 types, lists within the clients service's limits
    (``clients.MAX_LIST_ITEMS`` entries of at most ``clients.MAX_URI_LENGTH`` characters), a ``default_max_age``
    of whole seconds (``clients.checked_max_age``; returned as an int), with usable
    redirect URIs (https, or http on a loopback address), asking for nothing discovery does not offer (``jwks``,
    a ``subject_type`` other than public, encrypted or signed responses). Raises ``invalid_redirect_uri`` or
    ``invalid_client_metadata`` (RFC 7591 §3.2.2), never quoting the client's values; nothing is stored
    unless every check passes."""
    if not isinstance(data, dict) or not data:
        raise InvalidClientMetadataError("The client metadata must be a non-empty JSON object.")
    for key, value in data.items():
        if key in _STRING_METADATA and not isinstance(value, str):
            raise InvalidClientMetadataError(f"{key} must be a string.")
        if key in _BOOLEAN_METADATA and not isinstance(value, bool):
            raise InvalidClientMetadataError(f"{key} must be true or false.")
        if key in _STRING_LIST_METADATA:
            error = InvalidRedirectURIError if key == "redirect_uris" else InvalidClientMetadataError
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise error(f"{key} must be an array of strings.")
            if len(value) > clients_service.MAX_LIST_ITEMS:
                raise error(f"{key} may hold at most {clients_service.MAX_LIST_ITEMS} entries.")
            if any(len(v) > clients_service.MAX_URI_LENGTH for v in value):
                raise error(f"Each entry of {key} must be at most {clients_service.MAX_URI_LENGTH} characters.")
    if "default_max_age" in data:  # a JSON number of seconds (a string is refused here, not read as digits)
        value = data["default_max_age"]
        if isinstance(value, str):
            raise InvalidClientMetadataError("default_max_age must be a number.")
        try:
            data = {**data, "default_max_age": clients_service.checked_max_age(value)}
        except clients_service.ClientError as e:
            raise InvalidClientMetadataError(oauth_text(e)) from None
    if "jwks" in data:  # no client keys are used here (no private_key_jwt, no encrypted tokens)
        raise InvalidClientMetadataError("jwks is not supported.")
    # OpenID Connect Registration 1.0 §2 metadata asking for what discovery does not offer: refused rather than
    # dropped, so that no client takes public identifiers, plain ID tokens or plain userinfo for what it asked
    if data.get("subject_type") not in (None, "public"):
        raise InvalidClientMetadataError("Only the public subject_type is supported.")
    for key in _UNOFFERED_METADATA:
        if data.get(key) is not None:
            raise InvalidClientMetadataError(f"{key} is not supported.")
    if not data.get("redirect_uris"):
        raise InvalidRedirectURIError("redirect_uris is required.")
    for key, what, error in (("redirect_uris", "redirect URI", InvalidRedirectURIError),
                             ("post_logout_redirect_uris", "post-logout redirect URI", InvalidClientMetadataError)):
        for uri in data.get(key) or []:
            try:
                as_checked = clients_service.check_uri(uri, what)
            except clients_service.ClientError as e:
                raise error(oauth_text(e)) from None
            if as_checked != uri:  # registered exactly as sent, or it would never match
                raise error(f"A {what} must not have surrounding whitespace.")
    # RFC 6749 3.1.2.1 / RFC 9700 2.6: codes travel to the redirect URI, so a self-registered client gets TLS
    # ones, or http on a loopback address (RFC 8252 7.3, native apps), whatever the issuer: our own rule, not
    # Authlib's transport check, which an http (development) issuer turns off (operators may register what they
    # choose: idp.oauth.clients)
    if not all(clients_service.tls_or_loopback(u) for u in data["redirect_uris"]):
        raise InvalidRedirectURIError("A redirect URI must use https (http only on a loopback address).")
    if data.get("token_endpoint_auth_method") == "none" and not all(
            clients_service.tls_or_loopback(u) for u in data.get("post_logout_redirect_uris") or []):
        raise InvalidClientMetadataError("A public client's post-logout redirect URIs must use https (http only "
                                         "on a loopback address).")
    return dict(data)


class Registration(ClientRegistrationEndpoint):
    """RFC 7591, enabled only when ``registration_access_token`` is configured."""

    def authenticate_token(self, request):
        """The view has checked the token under the throttle already; Authlib asks again (same rule)."""
        expected = self.server.config.registration_access_token
        return "initial" if matches(request.headers.get("Authorization"), expected) else None

    def get_server_metadata(self):
        return self.server.metadata()

    def extract_client_metadata(self, request):
        raw = checked_metadata(request.payload.data)
        request.payload = _MetadataPayload(raw)
        metadata = super().extract_client_metadata(request)
        if metadata.get("response_types", ["code"]) != ["code"]:
            raise InvalidClientMetadataError("Only response_types [code] is supported.")
        if metadata["token_endpoint_auth_method"] not in AUTH_METHODS:
            raise InvalidClientMetadataError("Unsupported token_endpoint_auth_method.")
        alg = raw.get("id_token_signed_response_alg")
        if alg is not None:
            if alg not in clients_service.ID_TOKEN_ALGS:
                raise InvalidClientMetadataError("Unsupported id_token_signed_response_alg.")
            metadata["id_token_signed_response_alg"] = alg
        request._deepauth_metadata = metadata
        return metadata

    def generate_client_info(self, request):
        info = super().generate_client_info(request)
        if request._deepauth_metadata["token_endpoint_auth_method"] == "none":
            info.pop("client_secret", None)
            info.pop("client_secret_expires_at", None)
        return info

    def generate_client_id(self, request):
        return clients_service.new_client_id()

    def generate_client_secret(self, request):
        return clients_service.new_secret()

    def save_client(self, client_info, client_metadata, request):
        method = client_metadata["token_endpoint_auth_method"]
        try:
            doc, _ = clients_service.create_client(
                self.server.db, self.server.config, client_metadata.get("client_name") or "Unnamed client",
                client_metadata["redirect_uris"], public=(method == "none"),
                scope=client_metadata.get("scope") or clients_service.DEFAULT_SCOPE,
                post_logout_redirect_uris=client_metadata.get("post_logout_redirect_uris"),
                grant_types=client_metadata.get("grant_types") or list(clients_service.DEFAULT_GRANT_TYPES),
                id_token_signed_response_alg=client_metadata.get("id_token_signed_response_alg", "RS256"),
                token_endpoint_auth_method=None if method == "none" else method,
                client_id=client_info["client_id"], secret=client_info.get("client_secret"),
                logo_uri=client_metadata.get("logo_uri"), policy_uri=client_metadata.get("policy_uri"),
                tos_uri=client_metadata.get("tos_uri"),
                backchannel_logout_uri=(request.payload.data or {}).get("backchannel_logout_uri"),
                backchannel_logout_session_required=(request.payload.data or {}).get(
                    "backchannel_logout_session_required") is True,
                default_max_age=(request.payload.data or {}).get("default_max_age"),
                created_via="registration", **audit.request_context())
        except clients_service.ClientError as e:
            raise InvalidClientMetadataError(oauth_text(e)) from None
        client_metadata["scope"] = doc["scope"]
        client_metadata["grant_types"] = doc["grant_types"]
        client_metadata["response_types"] = ["code"]
        return doc

    def generate_client_registration_info(self, client, request):
        """Registered metadata Authlib's claims classes do not know, echoed in the response (RFC 7591 3.2.1)."""
        info = {k: client[k] for k in clients_service.LINK_FIELDS if client.get(k)}
        if client.get("backchannel_logout_uri"):
            info["backchannel_logout_uri"] = client["backchannel_logout_uri"]
            info["backchannel_logout_session_required"] = client["backchannel_logout_session_required"]
        if client.get("default_max_age") is not None:
            info["default_max_age"] = client["default_max_age"]
        return info


class _MissingGrantType(UnsupportedGrantTypeError):
    """``invalid_request`` for a token request without ``grant_type``, raised where Authlib's token endpoint expects
    ``UnsupportedGrantTypeError`` (the one error it answers before a grant is chosen)."""

    error = "invalid_request"

    def __init__(self):
        super().__init__(None)

    def get_error_description(self):
        return "Missing 'grant_type' in request."


def _authorization_readable(auth: str | None) -> bool:
    """Whether Authlib's ``extract_basic_authorization`` can read ``auth`` without raising."""
    if not auth or " " not in auth:
        return True
    parts = auth.split(None, 1)
    if len(parts) != 2:
        return False
    if parts[0].lower() != "basic":
        return True
    try:
        base64.b64decode(parts[1]).decode("utf-8")
    except binascii.Error:
        return True  # Authlib treats undecodable base64 as no credentials
    except ValueError:  # non-ASCII base64 text, or credentials that are not UTF-8
        return False
    return True


# --- the server ---------------------------------------------------------------------------

class IdPAuthorizationServer(AuthorizationServer):
    def __init__(self, app, db, config, keys):
        from idp.web.api import api_registry
        self.db, self.config, self.keys = db, config, keys
        self.api = api_registry(app)
        self.authorization_grant_classes: list[type] = []  # the grants that answer /authorize
        super().__init__()
        self._fresh_client_auth = ClientAuthentication(self.query_client_fresh)
        self.init_app(app)
        self.scopes_supported = list(SUPPORTED_SCOPES)
        self.issuer_parameter = IssuerParameter(config)
        self.register_extension(self.issuer_parameter)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDConnect(self)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.resource_protector = BearerProtector()
        self.resource_protector.register_token_validator(BearerValidator(self))
        self.register_endpoint(IdPUserInfoEndpoint(self, resource_protector=self.resource_protector))
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_endpoint(EndSession)
        # kept: the view checks the initial access token before Authlib reads the request
        self.registration = Registration(self, claims_classes=[ClientMetadataClaims, LogoutMetadataClaims])
        self.register_endpoint(self.registration)

    def register_grant(self, grant_cls, extensions=None):
        if hasattr(grant_cls, "check_authorization_endpoint"):
            self.authorization_grant_classes.append(grant_cls)
        super().register_grant(grant_cls, extensions)

    # requests built from the issuer URL (and stored authorization parameters)
    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request
        if isinstance(request, dict):
            return IdPRequest(self.config.issuer, "GET", "/authorize", {}, data=request)
        # the path is enough for Authlib's transport check (parameters are read from the payload)
        req = IdPRequest(self.config.issuer, flask_request.method, flask_request.path,
                         flask_request.headers, args=flask_request.args, form=flask_request.form)
        req.payload = _flask_payload(flask_request)
        return req

    def get_authorization_grant(self, request):
        """As Authlib's, but an unsupported ``response_type`` is refused without quoting it (an error
        description may hold only printable ASCII; quoting ``é`` made building the error fail). The error is
        redirected only to a redirect URI registered for the client, as in Authlib."""
        if not any(cls.check_authorization_endpoint(request) for cls in self.authorization_grant_classes):
            client = self.query_client(request.payload.client_id)
            uri = request.payload.redirect_uri
            uri = uri if client is not None and uri and client.check_redirect_uri(uri) else None
            if not request.payload.response_type:  # RFC 6749 4.1.2.1: a required parameter missing
                raise InvalidRequestError("Missing 'response_type' in request.", redirect_uri=uri)
            raise UnsupportedResponseTypeError(
                request.payload.response_type, description="The response_type is not supported (only 'code' is).",
                redirect_uri=uri)
        return super().get_authorization_grant(request)

    def get_token_grant(self, request):
        """As Authlib's, but a request without ``grant_type`` is ``invalid_request`` (RFC 6749 5.2: a required
        parameter missing), not ``unsupported_grant_type``."""
        if not request.payload.grant_type:
            raise _MissingGrantType()
        return super().get_token_grant(request)

    def authenticate_client(self, request, methods, endpoint="token"):
        """As Authlib's, but on the client read from the database now (``query_client_fresh``), and an
        ``Authorization`` header its Basic parser cannot read ("Bearer " with nothing after it, Basic credentials
        that are not ASCII base64 of UTF-8) is ``invalid_client`` rather than an exception (a 500). As for any
        client that tried the header, the answer is 401 with a Basic challenge (RFC 6749 §5.2)."""
        if not _authorization_readable(request.headers.get("Authorization")):
            raise InvalidClientError(description="Malformed Authorization header.", status_code=401)
        return self._fresh_client_auth(request, methods, endpoint)

    def query_client(self, client_id):
        """The enabled client ``client_id`` through the clients' short in-process cache
        (``clients.get_client_cached``): authorization requests, the sign-in pages, a token's client. A change
        made by another process shows here within the cache's lifetime; never used to authenticate a client."""
        return self._client(clients_service.get_client_cached(self.db, client_id) if client_id else None)

    def query_client_fresh(self, client_id):
        """The enabled client ``client_id`` as stored now, for every client authentication (token, revocation
        and introspection endpoints): a secret rotated, or a client disabled or deleted, by another process (the
        CLI, another worker's admin page) stops authenticating at once, not when this process's cached copy
        expires. Costs one ``find_one`` by ``_id`` (the primary key) per such request."""
        return self._client(clients_service.get_client(self.db, client_id) if client_id else None)

    def _client(self, doc):
        if not doc or not doc.get("enabled", True):
            return None
        return Client(doc, self.config, self.db)

    def save_token(self, token, request):
        code = request.authorization_code
        if code is None:  # refresh grant stores its own rotation
            return
        state = code.doc
        family = request.token_family
        try:
            tokens_repo.issue(
                self.db, self.config, family=family, client_id=request.client.get_client_id(),
                user_id=request.user.id, scope=token.get("scope") or state["scope"],
                access_token=token["access_token"], refresh_token=token.get("refresh_token"),
                auth_time=state.get("auth_time"), amr=state.get("amr"), acr=state.get("acr"), code_id=code.id,
                sid=state.get("sid"))
        except tokens_repo.FamilyRevoked:
            # The grant ended while this redemption ran - a second redemption of the code, a sign-out, a
            # password change, the app removed - and left a revoked tombstone under the family id this
            # redemption was given: nothing is stored, and the client gets no tokens at all (an ID token
            # would give it a session for a sign-in it may already have been told ended).
            log.warning("grant ended before its tokens were stored",
                        extra={"client_id": request.client.get_client_id()})
            raise InvalidGrantError(description="The authorization grant ended (signed out, revoked or "
                                                "already used).") from None
        log.info("tokens issued", extra={"client_id": request.client.get_client_id(), "grant": "authorization_code"})

    def sign_id_token(self, client, user, scope, *, access_token=None, nonce=None, auth_time=None, acr=None,
                      amr=None, sid=None) -> str:
        alg = client.id_token_signed_response_alg or "RS256"
        kid, key = self.keys.signing_key(alg)
        now = int(time.time())
        claims = {"iss": self.config.issuer, "sub": user.id, "aud": client.get_client_id(), "iat": now,
                  "exp": now + self.config.id_token_lifetime_s}
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if nonce:
            claims["nonce"] = nonce
        if acr:
            claims["acr"] = acr
        if amr:
            claims["amr"] = list(amr)
        if sid:  # Back-Channel Logout 1.0: the session the logout token's sid will name
            claims["sid"] = sid
        if access_token:
            claims["at_hash"] = create_half_hash(access_token, alg).decode()
        for k, v in user_claims(user, scope).items():
            claims.setdefault(k, v)
        return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, claims, key, algorithms=[alg])

    def id_token_hint_claims(self, hint: str) -> dict | None:
        """The claims of ``hint`` when it is an ID token this provider signed (under a published key) for its
        issuer, naming a subject; else None. Expiry is not checked: a hint is an earlier ID token (OpenID
        Connect Core 3.1.2.1, RP-Initiated Logout 2). The same keys sign logout tokens (``backchannel``), which
        every back-channel client receives and which name a ``sub`` too: one is typed ``logout+jwt`` and
        carries ``events`` (Back-Channel Logout 2.4, RFC 8725 3.11), and is no ID token. Its ``iat`` and ``nbf``
        (when present) may lie up to ``CLOCK_LEEWAY_S`` ahead of this instance's clock: another instance, whose
        clock runs ahead, may have signed it."""
        from joserfc.errors import JoseError
        try:
            token = jwt.decode(hint, self.keys.public_keyset(), algorithms=list(clients_service.ID_TOKEN_ALGS))
            _HintClaims(leeway=CLOCK_LEEWAY_S, nbf={"essential": False}).validate(token.claims)
        except (JoseError, ValueError, TypeError):
            return None
        typ = token.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ("jwt", "application/jwt")):
            return None
        claims = dict(token.claims)
        if "events" in claims:
            return None
        return claims if claims.get("iss") == self.config.issuer and isinstance(claims.get("sub"), str) else None

    def metadata(self) -> dict:
        from idp.signin.flow import ACR_PWD, ACR_PWD_FACE, ACR_PWD_OTP
        iss = self.config.issuer
        urls = self.api.metadata_urls(iss)  # the endpoints' URLs from the paths their routes are declared at
        if not self.config.registration_access_token:
            urls.pop("registration_endpoint", None)  # dynamic registration is off
        meta = {
            "issuer": iss,
            **urls,
            "scopes_supported": list(SUPPORTED_SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": list(clients_service.GRANT_TYPES),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(clients_service.ID_TOKEN_ALGS),
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": list(clients_service.SECRET_AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "at_hash", "sid",
                                 "name", "preferred_username", "updated_at", "email", "email_verified",
                                 "phone_number", "phone_number_verified"],
            "acr_values_supported": [ACR_PWD, ACR_PWD_FACE, ACR_PWD_OTP],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "require_request_uri_registration": False,
        }
        return meta
