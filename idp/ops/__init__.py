"""Operating endpoints: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``, plus the per-request
metrics hook, which records the response as sent (definitions in :mod:`idp.metrics`).

* ``/healthz`` — 200 while the process serves requests; it touches nothing else.
* ``/readyz`` — 200 when the database answers a ping, no migration is pending and (when face
  sign-in is enabled) the face models are loaded in this worker; otherwise 503 with
  ``{"status": "unready", "reasons": [...]}``.
* ``/metrics`` — with ``IDP_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``;
  without it, only for direct loopback clients (no proxy headers) of a development (http loopback) issuer: with
  an https issuer the provider sits behind a TLS proxy, maybe on the same host, whose forwarded requests all come
  from loopback (with no proxy header when it adds none), so there the token is needed. Everyone else gets 404, so
  the counts (sign-in failures, face rejections) are not public by default; wrong tokens are throttled
  per client network (``idp.web.bearer``: 429 with ``Retry-After``).
"""
from __future__ import annotations

import ipaddress
import threading
import time

from flask import Blueprint, Response, current_app, g, jsonify, request, request_finished

from idp.web import bearer
from idp.web.logs import quiet_when_ok

bp = Blueprint("ops", __name__)
READY_PING_TIMEOUT_MS = 2000
WARMED_UP = "idp_warmed_up"
_probe_lock = threading.Lock()


def run_warmups(app) -> None:
    """Run the features' warm-ups (face models) and mark this worker as warmed up for /readyz."""
    for warm_up in app.extensions.get("idp_warmups", []):
        warm_up()
    app.extensions[WARMED_UP] = True


def _probe_client(app):
    """A client with short timeouts for the readiness ping (the app's own waits up to 10 s)."""
    client = app.extensions.get("ops_probe_client")
    if client is None:
        from pymongo import MongoClient
        with _probe_lock:
            client = app.extensions.get("ops_probe_client")
            if client is None:
                config = app.config["IDP"]
                client = MongoClient(config.mongodb_uri, serverSelectionTimeoutMS=READY_PING_TIMEOUT_MS,
                                     connectTimeoutMS=READY_PING_TIMEOUT_MS, connect=False,
                                     appname="deepauth-readyz")
                app.extensions["ops_probe_client"] = client
    return client


def readiness(app) -> list[str]:
    """Reasons this worker is not ready (empty when ready)."""
    from pymongo.errors import PyMongoError

    from idp.store import migrate

    config = app.config["IDP"]
    reasons = []
    client = _probe_client(app)
    try:
        client.admin.command("ping")
        if migrate.pending(client[config.db_name]):
            reasons.append("migrations_pending")
    except PyMongoError:
        reasons.append("database_unreachable")
    if config.face_enabled and not app.extensions.get(WARMED_UP):
        reasons.append("face_models_not_loaded")
    return reasons


@bp.get("/healthz")
@quiet_when_ok
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
@quiet_when_ok
def readyz():
    reasons = readiness(current_app)
    if reasons:
        return jsonify(status="unready", reasons=reasons), 503
    return jsonify(status="ready")


def _loopback_direct() -> bool:
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics_view():
    from idp import get_db, metrics

    config = current_app.config["IDP"]
    token = config.metrics_token
    if token:
        checked = bearer.check(get_db(), config, "metrics", token)
        if checked.wait:
            return bearer.throttled_response(checked.wait)
        if not checked.ok:
            return jsonify(error="not_found"), 404
    elif config.secure_cookies or not _loopback_direct():
        return jsonify(error="not_found"), 404
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _grant_type() -> str | None:
    """The token request's grant type, if its body was readable (a 413 body is not parsed again)."""
    try:
        return request.form.get("grant_type")
    except Exception:
        return None


def _observe_request(app, response, **extra) -> None:
    """Record the request in the metrics (``idp.metrics.observe_request``) with the response as sent: connected to
    Flask's ``request_finished``, it sees the answer whichever ``after_request`` hook replaced the view's (the
    sign-out of an account erased meanwhile, ...), and times every hook and the session's save too."""
    from idp import metrics
    try:
        started = g.get("metrics_started")
        if started is not None:
            path = request.path
            metrics.observe_request(
                path, request.endpoint, response.status_code, time.perf_counter() - started,
                grant_type=_grant_type() if path == "/oauth/token" else None,
                face_purpose=(request.view_args or {}).get("purpose"))
    except Exception:  # metrics never break a response
        app.logger.exception("metrics update failed")


def init_app(app) -> None:
    app.register_blueprint(bp)
    from idp.web.api import ApiPath, api_registry
    # probes and scrapes: no browser session
    api_registry(app).add(*(ApiPath(path, endpoint, json_errors=False) for path, endpoint in (
        ("/healthz", "ops.healthz"), ("/readyz", "ops.readyz"), ("/metrics", "ops.metrics_view"))))

    @app.before_request
    def _metrics_start():
        g.metrics_started = time.perf_counter()

    request_finished.connect(_observe_request, app)
