"""The OAuth 2.0 / OpenID Connect provider (Authlib), its clients, keys and pages.

Public pieces other packages use:
  ``idp.oauth.clients``  — the clients service (create/list/get/update/disable/delete/rotate_secret,
                            ``ensure_demo_client``)
  ``idp.oauth.tokens``   — ``revoke_user_tokens(db, user_id)`` (call on account deletion)

Registers ``tokens.end_user_grants`` in ``app.extensions["idp_end_user_grants"]`` (see
``idp.accounts.grants.end_app_grants``): a password change or "sign out everywhere" ends the apps' tokens without
the accounts package knowing about OAuth; ``tokens.end_session_grants`` in ``idp_sign_out_hooks``: a sign-out deletes
the unredeemed codes of that sign-in and ends its tokens without offline access. Back-channel logout
(``backchannel``) hooks in the same way: into
``idp_end_user_grants``, ``idp_sign_out_hooks`` (``idp.signin.sign_out``) and the accounts repository's
``BEFORE_DELETE_HOOKS`` (account erasure).
  ``idp.oauth.keys``     — signing keys (``rotate``, ``ensure_keys``)
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger("idp.oauth")


def _end_grants_before_erasure(db, user_id) -> None:
    """An erased account's apps are told over the back channel (queued before its sessions are erased;
    the jobs carry no ``user_id`` field, so the erasure leaves them), and its grants end first
    (``tokens.end_user_grants``), whoever deletes it (the admin page, ``idp users delete``): a code being
    redeemed at that moment leaves a revoked tombstone under its family id, so its tokens are not stored
    after the erasure has passed the tokens."""
    from .backchannel import logout_user
    from .tokens import end_user_grants
    logout_user(db, user_id)
    end_user_grants(db, user_id)


def _register_account_hooks() -> None:
    from idp.accounts import users
    if _end_grants_before_erasure not in users.BEFORE_DELETE_HOOKS:
        users.BEFORE_DELETE_HOOKS.append(_end_grants_before_erasure)


_register_account_hooks()


def _warn_face_required_clients(db) -> None:
    """With face sign-in off, a start-up warning naming how many enabled clients need the face (their
    sign-ins are all refused), so that an operator sees it in the log and not only from users."""
    from .clients import face_required_signin_clients, list_clients
    stuck = face_required_signin_clients(list_clients(db))
    if stuck:
        log.warning("face sign-in is off (IDP_FACE_ENABLED=false): %d client(s) with face policy 'required' "
                    "cannot sign anyone in; `idp clients list` names them", len(stuck),
                    extra={"clients": len(stuck)})


def init_app(app) -> None:
    from idp import get_config, get_db

    from .admin import bp as admin_bp
    from .keys import KeyStore, ensure_keys
    from .server import IdPAuthorizationServer
    from .views import API_PATHS, bp

    config = get_config(app)
    db = get_db(app)
    if config.issuer.startswith("http://"):
        # An http issuer is a development choice, on a loopback address only (Config refuses any other host).
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    ensure_keys(db, config)
    keys = KeyStore(db, config)
    app.extensions["oauth_keys"] = keys
    app.extensions["oauth_server"] = IdPAuthorizationServer(app, db, config, keys)
    from .tokens import end_session_grants, end_user_grants
    app.extensions.setdefault("idp_end_user_grants", []).append(end_user_grants)
    app.extensions.setdefault("idp_sign_out_hooks", []).append(end_session_grants)
    _init_backchannel(app, db, config, keys)
    if not config.face_enabled:
        _warn_face_required_clients(db)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)
    from idp.signin import flow_for
    flow_for(app).request_endpoint = "oauth.authorize"  # where a pending request resumes after the steps
    flow_for(app).restart_endpoint = "oauth.restart"  # where a page of an ended session starts its request again
    from idp.signin import request_token, restart_url

    from .views import requesting_app, restart_posted_request
    app.add_template_global(requesting_app)
    app.add_template_global(request_token, "signin_request_token")
    app.add_template_global(restart_url, "signin_restart_url")
    app.extensions["csrf_failure_answer"] = restart_posted_request  # idp.web.errors

    @app.after_request
    def _client_logo_csp(response):
        # runs before the app-wide security headers (which only set the CSP when it is missing)
        from flask import g

        from idp import csp
        origin = g.pop("client_logo_origin", None)
        if origin and response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = csp(origin)
        return response
    from idp.web.api import api_registry
    api_registry(app).add(*API_PATHS)


def _init_backchannel(app, db, config, keys) -> None:
    """Back-channel logout: the sender of this process, and the hooks that queue logout tokens when a
    sign-in ends (sign-out) or every sign-in of a user ends (password change, "sign out everywhere")."""
    from . import backchannel
    sender = backchannel.Sender(db, config, keys)
    app.extensions["oauth_backchannel"] = sender

    def end_user(db_, uid):
        if backchannel.logout_user(db_, uid):
            sender.wake()
        return 0  # ends no grant itself (the tokens hook counts those)

    def signed_out(db_, uid, sid):
        if backchannel.logout_session(db_, sid):
            sender.wake()

    app.extensions.setdefault("idp_end_user_grants", []).append(end_user)
    app.extensions.setdefault("idp_sign_out_hooks", []).append(signed_out)
    # Run the sender from the start when there is (or may soon be) something to send: jobs left by an
    # earlier run or queued by the CLI (account erasure), and clients that take back-channel logouts.
    if db.logout_jobs.find_one({"state": "pending"}, {"_id": 1}) or db.clients.find_one(
            {"backchannel_logout_uri": {"$nin": [None, ""]}}, {"_id": 1}):
        sender.ensure_started()
