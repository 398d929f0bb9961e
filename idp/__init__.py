"""Deep Authenticator: an OpenID Connect provider with password + face sign-in."""
from __future__ import annotations

import importlib
import logging
import os

# TensorFlow's native INFO/WARNING lines are noise for an operator; errors still show. Set before anything
# imports TensorFlow; an explicit value wins. (The notices TensorFlow prints while loading regardless are
# filtered by idp.native_notices.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from flask import Flask  # noqa: E402

from idp.assets import asset_dir  # noqa: E402
from idp.config import Config  # noqa: E402

__version__ = "0.1.0"
log = logging.getLogger("idp")

# Feature packages, each exposing ``init_app(app)`` (blueprints, its sign-in step, its API paths,
# CLI-independent wiring). Order matters only for the sign-in flow: accounts registers the password step,
# which the face step (faceweb) is put right after.
FEATURES = ("idp.mail", "idp.accounts", "idp.oauth", "idp.faceweb", "idp.admin", "idp.ops")

def create_app(config: Config | None = None) -> Flask:
    """The one app factory. ``config`` defaults to ``Config.load()``; a given one gets its missing secrets
    the same way (``ensure_secrets``)."""
    from idp.store import connect
    from idp.store.runtime import check_migrations, ensure_server
    from idp.web import (MongoSessionInterface, Request, SafeJSONProvider, configure_logging, init_body_limits,
                         init_error_handlers, init_request_ids)

    config = config.ensure_secrets() if config is not None else Config.load()
    if not config.extra.get("keep_logging"):
        configure_logging(config.log_format, config.log_level)
    app = Flask("idp", template_folder=str(asset_dir("templates")), static_folder=str(asset_dir("static")),
                static_url_path="/static")
    app.json = SafeJSONProvider(app)
    app.request_class = Request
    from idp.keyring import secret_keys
    app.config.update(
        SECRET_KEY=config.secret_key,
        # Retired secret keys still verify, never sign: Flask's own list, and Flask-WTF's CSRF serializer,
        # which does not read SECRET_KEY_FALLBACKS but takes itsdangerous' key list (signs with the last).
        SECRET_KEY_FALLBACKS=secret_keys(config)[1:],
        WTF_CSRF_SECRET_KEY=list(reversed(secret_keys(config))),
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        IDP=config,
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session's lifetime instead
        # No Referer check on https: every page says Referrer-Policy no-referrer, so browsers send none and the
        # check refused every form. The session-bound token is the protection; the session cookie is __Host-
        # (set only over https by this host), so neither a sibling domain nor a network attacker plants one.
        WTF_CSRF_SSL_STRICT=False,
        PREFERRED_URL_SCHEME="https" if config.secure_cookies else "http",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update(config.extra.get("flask", {}))
    from idp.web.proxy import TrustedProxies
    # request.remote_addr (every per-IP limit, the audit log) is the client's address through trusted proxies
    app.wsgi_app = TrustedProxies.wrap(app.wsgi_app, config.trusted_proxies)

    server, embedded = ensure_server(config)
    if server is not None:
        app.extensions["embedded_db"] = server
    db = connect(config.mongodb_uri, config.db_name)
    check_migrations(db, config.extra.get("auto_migrate", embedded))
    app.extensions["db"] = db

    from idp.web.api import ApiPath, api_registry
    api = api_registry(app)  # the features declare their API paths into it (see idp.web.api)
    api.add(ApiPath("/static/", "static", json_errors=False),  # files: no session
            ApiPath("/api/", browser_session=True))   # the pages' own JSON API: the session, JSON errors
    app.session_interface = MongoSessionInterface(db.sessions, config.session_lifetime_s, config.secure_cookies,
                                                  is_stateless=api.is_stateless,
                                                  anon_lifetime_s=config.anon_session_lifetime_s)
    init_request_ids(app)
    init_body_limits(app, config.max_form_bytes)  # before CSRF protection reads a form
    init_error_handlers(app)

    from flask_wtf.csrf import CSRFProtect
    app.extensions["csrf_protect"] = CSRFProtect(app)

    @app.after_request
    def _security_headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", csp())
        if config.secure_cookies:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.mimetype == "text/html":
            h.setdefault("Cache-Control", "no-store")
        return response

    for name in FEATURES:
        importlib.import_module(name).init_app(app)
    api.apply(app)
    return app


def csp(extra_img_src: str = "") -> str:
    """The Content-Security-Policy of every page; ``extra_img_src`` adds image sources (e.g. the https
    origin of a client's registered logo on the sign-in page). ``base-uri 'none'``: an injected ``<base>`` cannot
    move the pages' relative form actions and scripts elsewhere. No ``form-action``: browsers apply it to the
    redirects that follow a form post too, and the sign-in forms end in a redirect to the client's registered
    ``redirect_uri`` (any origin); the form_post page has its own policy naming that one origin."""
    img = ("'self' data: blob: " + extra_img_src).strip()
    return (f"default-src 'self'; img-src {img}; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def get_db(app=None):
    from flask import current_app
    return (app or current_app).extensions["db"]


def get_config(app=None) -> Config:
    from flask import current_app
    return (app or current_app).config["IDP"]
