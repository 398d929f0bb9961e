"""Thin Authlib model wrappers over the MongoDB documents (clients, codes, tokens, users)."""
from __future__ import annotations

from datetime import datetime, timezone

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

from .clients import SECRET_AUTH_METHODS, allowed_scope, redirect_uri_registered, verify_secret
from .scopes import OFFLINE_ACCESS


class UserRef:
    """The resource owner: its id (the OIDC ``sub``) and, when loaded, the users document."""

    __slots__ = ("id", "doc")

    def __init__(self, user_id: str, doc: dict | None = None):
        self.id = user_id
        self.doc = doc

    def get_user_id(self):
        return self.id


class Client(ClientMixin):
    def __init__(self, doc: dict, config, db=None):
        self.doc = doc
        self.config = config
        self.db = db  # given: a secret verified under a retired pepper is re-hashed (clients.verify_secret)
        self.client_id = doc["_id"]
        self.id_token_signed_response_alg = doc.get("id_token_signed_response_alg") or "RS256"

    # --- attributes used by our own code ---
    @property
    def name(self) -> str:
        return self.doc.get("name") or self.client_id

    @property
    def public(self) -> bool:
        return bool(self.doc.get("public"))

    @property
    def skip_consent(self) -> bool:
        return bool(self.doc.get("skip_consent"))

    @property
    def face_policy(self) -> str:
        return self.doc.get("face_policy", "required")

    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": list(self.doc.get("post_logout_redirect_uris") or [])}

    # --- ClientMixin ---
    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # OpenID Connect: redirect_uri is required in every authorization request

    def get_allowed_scope(self, scope):
        return allowed_scope(self.doc, scope) or None

    def check_redirect_uri(self, redirect_uri):
        """Exact match; for a public client (a native app) also any port on a loopback http URI (RFC 8252 §7.3:
        ``clients.redirect_uri_registered``). A confidential client is a web server that knows its own port: another
        port on its machine is another program, so it keeps the exact match."""
        return redirect_uri_registered(self.doc.get("redirect_uris"), redirect_uri,
                                       any_loopback_port=bool(self.doc.get("public")))

    def check_client_secret(self, client_secret):
        return verify_secret(self.config, self.doc, client_secret, db=self.db)

    def check_endpoint_auth_method(self, method, endpoint):
        if self.public:
            return method == "none" and endpoint != "introspection"
        return method in SECRET_AUTH_METHODS

    def check_response_type(self, response_type):
        """``code``, for a client registered for the authorization code grant (RFC 6749 4.1.2.1: any other is
        ``unauthorized_client`` before a sign-in starts, never a consent and a code it cannot redeem)."""
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type):
        return grant_type in (self.doc.get("grant_types") or [])


class AuthCode(AuthorizationCodeMixin):
    def __init__(self, doc: dict):
        self.doc = doc
        self.id = doc["_id"]
        self.user_id = doc["user_id"]
        self.code_challenge = doc.get("code_challenge")
        self.code_challenge_method = doc.get("code_challenge_method")

    def get_redirect_uri(self):
        return self.doc["redirect_uri"]

    def get_scope(self):
        return self.doc["scope"]

    def get_nonce(self):
        return self.doc.get("nonce")

    def get_auth_time(self):
        return self.doc.get("auth_time")

    def get_acr(self):
        return self.doc.get("acr")

    def get_amr(self):
        return list(self.doc.get("amr") or [])


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


_UNREAD = object()


class Token(TokenMixin):
    """A token family document seen through one of its values (``kind`` "access_token" or "refresh_token").
    Found by a lookup that knows the clients (``query_client``: the bearer validator, introspection,
    revocation), it is honoured for at most what its client may hold now (``get_scope``); the client is read
    once per Token, through the clients' short in-process cache (``clients.get_client_cached``)."""

    def __init__(self, doc: dict, kind: str, db=None, query_client=None):
        self.doc = doc
        self.kind = kind
        self._db = db
        self._query_client = query_client
        self._client = _UNREAD
        self.client_id = doc["client_id"]
        self.user_id = doc.get("user_id")

    @property
    def scope(self) -> str | None:
        """What Authlib's userinfo endpoint reads: ``get_scope``."""
        return self.get_scope()

    @property
    def expires_at(self) -> datetime | None:
        return _aware(self.doc.get("access_expires" if self.kind == "access_token" else "refresh_expires"))

    def check_client(self, client):
        return self.client_id == client.get_client_id()

    def issued_scope(self) -> str:
        """The scope the token was issued with (an access token's ``narrowed_scope`` when its refresh asked for
        less)."""
        if self.kind == "access_token" and self.doc.get("narrowed_scope"):
            return self.doc["narrowed_scope"]
        return " ".join(self.doc.get("scopes") or [])

    def get_scope(self):
        """The scope the token may be used for now, the one answer every place that honours a token reads (the
        userinfo endpoint through the bearer validator, introspection): the scope it was issued with, limited to
        what its client may hold as registered now (``clients.allowed_scope``). An operator narrowing a client's
        scopes narrows its unexpired tokens at their next use; widening the client again gives a token nothing
        it was not issued with. "" when the client is gone or disabled or may no longer use the grant the token
        serves (``_holder``), when nothing is left, and for a user's token of a grant of ``offline_access``
        (whatever scope a refresh narrowed the token to) that the client may no longer hold (a sign-out kept its
        family for that: it must not live on as an online token of an ended sign-in). A token seen without the
        clients (the refresh grant's rotation, which ``tokens.rotate_refresh`` limited already) carries the
        scope given to it."""
        if self._query_client is None:
            return self.issued_scope() if "scopes" in self.doc else self.doc.get("scope")
        client = self._holder()
        if client is None:
            return ""
        issued = self.issued_scope()
        offline_grant = OFFLINE_ACCESS in (self.doc.get("scopes") or [])
        if self.user_id is not None and offline_grant and OFFLINE_ACCESS not in str(
                client.doc.get("scope") or "").split():
            # the grant (not the access token's narrowed scope: a refresh may leave offline_access out) is for use
            # while the user is away, so a sign-out kept it (``tokens.end_session_grants``); the client may no
            # longer hold that, and whether the sign-in is still alive is not known here
            return ""
        return allowed_scope(client.doc, issued, for_user=self.user_id is not None)

    def get_expires_in(self):
        exp = self.expires_at
        return max(0, int((exp - datetime.now(timezone.utc)).total_seconds())) if exp else 0

    def is_expired(self):
        exp = self.expires_at
        return exp is None or exp <= datetime.now(timezone.utc)

    def is_revoked(self):
        """Revoked with its family; or, for a token found by a lookup that knows the clients: its client is
        disabled or gone (disabling or deleting a client revokes its tokens, but a token stored by a request that
        read the client before - another process's cached client - would outlive that), or may no longer use the
        grant the token serves (``_holder``: a client's own token, whatever scope it holds - one issued with none
        too -, a refresh token, a user's access token), its account may no longer sign in (disabled, or claimed
        for deletion: ``get_user``), nothing it was issued with is left for it (``get_scope``:
        a user's token without ``openid``, a client's own token without any of its scopes), or it is a refresh
        token its next refresh would revoke (``tokens.refreshable``)."""
        if self.doc.get("revoked"):
            return True
        if self._query_client is None:
            return False
        if self._holder() is None:
            return True
        if self.user_id is not None and self._db is not None and self._user_doc() is None:
            return True  # the account may no longer sign in (get_user)
        from .tokens import refreshable
        scope = self.get_scope()
        if self.kind == "refresh_token":
            return not refreshable(scope)
        return not scope and bool(self.issued_scope())

    def get_user(self):
        """The token's account while it may sign in (``users.may_sign_in``), else None (userinfo answers 401)."""
        doc = self._user_doc()
        return UserRef(self.user_id, doc) if doc else None

    def _user_doc(self) -> dict | None:
        """The token's account as stored (read once per Token) when it may still sign in, else None: disabling or
        deleting an account ends its tokens in a write after the one that refuses it; a request that died between
        the two leaves them stored, and they must not be honoured."""
        if not hasattr(self, "_user"):
            from idp.accounts.users import usable_account
            self._user = usable_account(self._db, self.user_id) if self._db is not None else None
        return self._user

    def _holder(self):
        """The token's client while it may hold the token, else None: enabled, and still registered for the
        grant the token serves - a client's own token (no user) the client_credentials grant, a refresh token
        the refresh_token grant, a user's access token the authorization_code grant (which a refresh also
        needs: ``clients._validate``)."""
        client = self.get_client()
        grant = ("client_credentials" if self.user_id is None
                 else "refresh_token" if self.kind == "refresh_token" else "authorization_code")
        if client is None or (grant is not None and not client.check_grant_type(grant)):
            return None
        return client

    def get_client(self):
        """The token's client if enabled (read once per Token), else None."""
        if self._client is _UNREAD:
            self._client = self._query_client(self.client_id) if self._query_client else None
        return self._client
