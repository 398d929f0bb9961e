"""Demo relying party for Deep Authenticator.

A small Flask app that signs in through the IdP with Authlib's Flask client:
authorization code flow as a confidential client (``client_secret_basic``),
PKCE S256, ``state`` and ``nonce``; the client is configured from the IdP's
discovery document and Authlib verifies the ID token with the IdP's JWKS.
The page shows the verified ID token claims (``amr`` and ``acr`` highlighted)
and the userinfo response, can refresh the tokens (refresh grant, showing the
new expiry and whether the refresh token rotated), and signs out through the
IdP's ``end_session_endpoint``. It asks for ``offline_access`` (OpenID Connect Core 11), the scope that
makes the IdP issue a refresh token, and receives back-channel logout tokens at ``/backchannel-logout``
(registered as its ``backchannel_logout_uri``): a verified token ends the matching sessions here (by ``sid``,
else by ``sub``), so signing out at the IdP, changing the password there or "sign out everywhere" signs
you out of the demo too.

Configuration (environment, as set by ``idp demo``): ``DEMO_ISSUER``,
``DEMO_CLIENT_ID``, ``DEMO_CLIENT_SECRET``, ``DEMO_PORT`` (5001),
``DEMO_BASE_URL`` (``http://127.0.0.1:<port>``); optional ``DEMO_HOST``
(127.0.0.1), ``DEMO_SCOPE``, ``DEMO_SECRET_KEY`` (random per process when unset).
The app registers ``<base>/callback`` as redirect URI and ``<base>/`` as
post-logout redirect URI.

Tokens never go to the browser: they stay in this process's memory, keyed by a
random id kept in the (signed) ``demo_session`` cookie — a name distinct from
the IdP's ``deepauth_session`` because both run on 127.0.0.1.

Serving: ``python -m clients.demo`` runs gunicorn with one worker process (the
signed-in sessions live in that process's memory) and a few threads. Its access
log shows the path without the query string, so authorization codes and
``state`` values on ``/callback`` never reach a log.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests
from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

HERE = Path(__file__).resolve().parent
DEFAULT_SCOPE = "openid profile email offline_access"
ACR_FACE = "urn:deepauth:acr:pwd+face"
SESSION_COOKIE = "demo_session"
HTTP_TIMEOUT_S = 10


class TokenStore:
    """Signed-in sessions of this RP, in memory (bounded; oldest dropped first)."""

    def __init__(self, max_entries: int = 1000):
        self._data: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, sid: str | None) -> dict | None:
        if not sid:
            return None
        with self._lock:
            return self._data.get(sid)

    def put(self, sid: str, entry: dict) -> None:
        with self._lock:
            self._data[sid] = entry
            self._data.move_to_end(sid)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def pop(self, sid: str | None) -> dict | None:
        with self._lock:
            return self._data.pop(sid, None) if sid else None

    def drop_where(self, match) -> int:
        """Remove every session whose entry satisfies ``match(entry)``; returns how many."""
        with self._lock:
            gone = [k for k, v in self._data.items() if match(v)]
            for k in gone:
                del self._data[k]
            return len(gone)


def fingerprint(token: str | None) -> str | None:
    """A short, non-reversible label for a token, so the page can show rotation without the token."""
    return hashlib.sha256(token.encode()).hexdigest()[:12] if token else None


def _when(ts) -> str:
    if not isinstance(ts, (int, float)):
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def create_app(issuer: str, client_id: str, client_secret: str, base_url: str, *,
               scope: str = DEFAULT_SCOPE, secret_key: str | None = None) -> Flask:
    issuer = issuer.rstrip("/")
    base_url = base_url.rstrip("/")
    app = Flask("clients.demo", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_hex(32),
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
    )
    app.jinja_env.filters["when"] = _when
    oauth = OAuth(app)
    idp = oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={"scope": scope, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic", "timeout": HTTP_TIMEOUT_S},
    )
    store = TokenStore()
    redirect_uri = base_url + "/callback"
    post_logout_uri = base_url + "/"
    app.extensions["demo"] = {"store": store, "oauth_app": idp, "redirect_uri": redirect_uri}

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        return session["csrf"]

    def check_csrf() -> None:
        sent = request.form.get("csrf", "")
        if not session.get("csrf") or not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
            abort(400, "The form expired or was not sent by this page; go back and try again.")

    app.jinja_env.globals["csrf_token"] = csrf_token

    def verify_id_token(token: dict, nonce: str | None) -> dict:
        return dict(idp.parse_id_token(token, nonce=nonce))

    def current() -> dict | None:
        return store.get(session.get("sid"))

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
                                    "frame-ancestors 'none'; form-action 'self' " + issuer)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(OAuthError)
    def _oauth_error(e: OAuthError):
        return render_template("demo/error.html", error=e.error or "oauth_error",
                               description=e.description), 400

    @app.errorhandler(JoseError)
    def _jose_error(e: JoseError):
        return render_template("demo/error.html", error="invalid_id_token",
                               description=f"The ID token did not verify: {e.error}: {e.description or ''}"), 400

    @app.errorhandler(requests.RequestException)
    def _http_error(e: requests.RequestException):
        return render_template("demo/error.html", error="idp_unreachable",
                               description=f"Could not talk to the identity provider at {issuer}: "
                                           f"{type(e).__name__}"), 502

    @app.errorhandler(400)
    def _bad_request(e):
        return render_template("demo/error.html", error="bad_request", description=e.description), 400

    @app.get("/")
    def index():
        notice = None
        if request.args.get("state"):  # back from the IdP's end_session_endpoint
            try:
                idp.validate_logout_response()
                notice = "Signed out at the identity provider."
            except OAuthError:
                notice = None
        return render_template("demo/index.html", s=current(), issuer=issuer, client_id=client_id,
                               acr_face=ACR_FACE, notice=notice)

    @app.get("/login")
    def login():
        extra = {}
        if request.args.get("acr") == "face":
            extra["acr_values"] = ACR_FACE
        if request.args.get("prompt") in ("login", "consent"):
            extra["prompt"] = request.args["prompt"]
        return idp.authorize_redirect(redirect_uri, **extra)

    @app.get("/callback")
    def callback():
        # authorize_access_token raises OAuthError for ?error=..., a bad state or a failed exchange,
        # and verifies the ID token (signature via JWKS, iss, aud, exp, nonce) before returning.
        token = idp.authorize_access_token()
        claims = dict(token.pop("userinfo", None) or {})
        if not claims:
            raise OAuthError(error="missing_id_token", description="The token response held no ID token.")
        userinfo = dict(idp.userinfo(token=token))
        sid = secrets.token_urlsafe(24)
        store.pop(session.get("sid"))
        session.clear()
        session["sid"] = sid
        store.put(sid, {"token": dict(token), "claims": claims, "nonce": claims.get("nonce"),
                        "userinfo": userinfo, "signed_in_at": time.time(), "refresh": None})
        return redirect(url_for("index"))

    @app.post("/refresh")
    def refresh():
        check_csrf()
        s = current()
        if s is None:
            return redirect(url_for("index"))
        old = s["token"]
        if not old.get("refresh_token"):
            raise OAuthError(error="no_refresh_token",
                             description="The IdP did not issue a refresh token for this sign-in "
                                         "(is the refresh_token grant enabled for this client?).")
        new = dict(idp.fetch_access_token(grant_type="refresh_token", refresh_token=old["refresh_token"]))
        new_claims = None
        if new.get("id_token"):
            # OIDC Core 12.2: a refreshed ID token must verify and keep iss and sub.
            new_claims = verify_id_token(new, None)
            if new_claims.get("sub") != s["claims"].get("sub"):
                raise OAuthError(error="invalid_id_token", description="The refreshed ID token has another sub.")
        new.setdefault("refresh_token", old["refresh_token"])
        new.setdefault("id_token", old.get("id_token"))
        s["refresh"] = {
            "at": time.time(),
            "old_expires_at": old.get("expires_at"), "new_expires_at": new.get("expires_at"),
            "old_rt": fingerprint(old.get("refresh_token")), "new_rt": fingerprint(new.get("refresh_token")),
            "rotated": new["refresh_token"] != old["refresh_token"],
            "new_id_token": new_claims is not None,
            "count": ((s.get("refresh") or {}).get("count") or 0) + 1,
        }
        s["token"] = new
        if new_claims:
            s["claims"] = new_claims
        store.put(session["sid"], s)
        return redirect(url_for("index"))

    seen_jti: collections.OrderedDict[str, float] = collections.OrderedDict()
    EVENT = "http://schemas.openid.net/event/backchannel-logout"

    @app.post("/backchannel-logout")
    def backchannel_logout():
        """OpenID Connect Back-Channel Logout 1.0, section 2.6: validate the logout token (signature with
        the IdP's JWKS, typ, iss, aud, iat/exp, the event, sub or sid, no nonce, jti not seen before),
        then end the matching sessions."""
        from joserfc import jwt as jose_jwt
        from joserfc.errors import JoseError as _JoseError
        from joserfc.jwk import KeySet

        def bad(description):
            resp = app.response_class(json.dumps({"error": "invalid_request", "error_description": description}),
                                      status=400, mimetype="application/json")
            resp.headers["Cache-Control"] = "no-store"
            return resp

        raw = request.form.get("logout_token")
        if not raw:
            return bad("logout_token missing")
        try:
            jwks = requests.get(idp.load_server_metadata()["jwks_uri"], timeout=HTTP_TIMEOUT_S).json()
            token = jose_jwt.decode(raw, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
        except (_JoseError, ValueError, KeyError, TypeError) as e:  # TypeError: a malformed header (crit)
            return bad(f"logout token does not verify: {type(e).__name__}")
        c = dict(token.claims)
        aud = c.get("aud")
        now = time.time()
        if (token.header.get("typ") != "logout+jwt" or c.get("iss") != issuer
                or client_id not in (aud if isinstance(aud, list) else [aud])
                or not isinstance(c.get("iat"), int) or not isinstance(c.get("exp"), int) or c["exp"] < now - 60
                or not isinstance(c.get("events"), dict) or EVENT not in c["events"] or "nonce" in c
                or not (c.get("sub") or c.get("sid")) or not c.get("jti") or c["jti"] in seen_jti):
            return bad("logout token claims are not valid")
        seen_jti[c["jti"]] = now
        while len(seen_jti) > 10000:
            seen_jti.popitem(last=False)
        if c.get("sid"):
            store.drop_where(lambda e: e["claims"].get("sid") == c["sid"])
        else:
            store.drop_where(lambda e: e["claims"].get("sub") == c["sub"])
        resp = app.response_class("", status=200)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.post("/logout")
    def logout():
        check_csrf()
        s = store.pop(session.get("sid"))
        session.clear()
        if s is None or not idp.load_server_metadata().get("end_session_endpoint"):
            return redirect(url_for("index"))
        return idp.logout_redirect(post_logout_redirect_uri=post_logout_uri,
                                   id_token_hint=s["token"].get("id_token"))

    return app


def app_from_env(environ=None) -> Flask:
    env = os.environ if environ is None else environ
    missing = [k for k in ("DEMO_ISSUER", "DEMO_CLIENT_ID") if not env.get(k)]
    if missing:
        raise SystemExit(f"clients.demo: set {', '.join(missing)} (`idp demo` does this for you)")
    port = int(env.get("DEMO_PORT", "5001"))
    return create_app(env["DEMO_ISSUER"], env["DEMO_CLIENT_ID"], env.get("DEMO_CLIENT_SECRET", ""),
                      env.get("DEMO_BASE_URL") or f"http://127.0.0.1:{port}",
                      scope=env.get("DEMO_SCOPE") or DEFAULT_SCOPE, secret_key=env.get("DEMO_SECRET_KEY"))


# gunicorn access-log line without the query string (%(U)s is the path only): no codes, no state.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


def main() -> None:
    """Serve the demo RP with gunicorn: one worker (tokens are kept in its memory), threaded."""
    from gunicorn.app.base import BaseApplication

    app = app_from_env()
    options = {
        "bind": f"{os.environ.get('DEMO_HOST', '127.0.0.1')}:{int(os.environ.get('DEMO_PORT', '5001'))}",
        "workers": 1, "threads": 4, "worker_class": "gthread", "timeout": 60, "graceful_timeout": 5,
        "accesslog": "-", "access_log_format": ACCESS_LOG_FORMAT, "loglevel": "warning",
        "control_socket_disable": True,
    }

    class DemoApplication(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            return app

    DemoApplication().run()
