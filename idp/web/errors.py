"""Every error reaches the user as a clear page or a JSON error, never a stack trace."""
from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger("idp.errors")

MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    413: "The request is too large.",
    429: "Too many attempts. Please wait and try again.",
    500: "Something went wrong on our side. Please try again.",
    503: "The service is briefly unavailable. Please try again in a moment.",
}
RETRY_AFTER_S = 5  # when the database is unreachable: pymongo reconnects by itself once it is back


def wants_json() -> bool:
    """JSON for an API path (``idp.web.api``) or a client that prefers JSON to HTML."""
    from .api import api_registry
    if api_registry().json_errors(request.path):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, message: str | None = None, code: str | None = None, title: str | None = None):
    """The error as JSON for API callers, else the error page (``title``: its heading, default by status)."""
    message = message or MESSAGES.get(status, "The request failed.")
    if wants_json():
        resp = jsonify({"error": code or _default_code(status), "error_description": message})
        resp.status_code = status
        return resp
    return render_template("error.html", status=status, message=message, title=title), status


def _default_code(status: int) -> str:
    return {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "request_too_large", 429: "slow_down",
            503: "temporarily_unavailable"}.get(status, "server_error")


def init_error_handlers(app) -> None:
    from flask import session

    from idp.store import UNAVAILABLE

    @app.before_request
    def _session_unreadable():
        if getattr(session, "unavailable", None) is not None:
            raise session.unavailable

    def _database_unavailable(e):
        current = session._get_current_object()
        if hasattr(current, "stateless"):  # nothing of this request is written back (idp.web.sessions)
            current.stateless = True
        return outage_response(e)
    for error in UNAVAILABLE:
        app.register_error_handler(error, _database_unavailable)

    @app.errorhandler(CSRFError)
    def _csrf(e):
        # a feature may answer it (a sign-in form of an ended session: back into its authorization request)
        answer = app.extensions.get("csrf_failure_answer")
        if answer is not None and (response := answer()) is not None:
            return response
        return error_response(400, "Your form expired or was not sent from this site. Go back, reload and try again.",
                              "csrf_failed", title="Form expired")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if isinstance(e, InternalServerError):
            return _unexpected(e)
        message = e.description if getattr(e, "_idp_message", False) else None
        return error_response(e.code or 500, message)

    @app.errorhandler(Exception)
    def _unexpected(e):
        from .logs import logged_path
        log.exception("unhandled error", extra={"path": logged_path()})
        return error_response(500)

    @app.after_request
    def _routing_redirect_on_this_site(response):
        # Werkzeug answers a path without its trailing slash (or with doubled slashes) with a redirect to an
        # absolute URL built from the request's Host header and scheme: whatever host the request named came
        # back in Location. A path on this site instead, as every other redirect here (one leading slash: never
        # a protocol-relative "//host").
        from urllib.parse import urlsplit, urlunsplit

        from werkzeug.routing import RequestRedirect
        if isinstance(request.routing_exception, RequestRedirect) and "Location" in response.headers:
            target = urlsplit(response.headers["Location"])
            response.headers["Location"] = urlunsplit(("", "", "/" + target.path.lstrip("/"), target.query, ""))
        return response


def outage_response(e: Exception):
    """The answer to a request that could not reach the database (``idp.store.UNAVAILABLE``): 503 "try again"
    with ``Retry-After``, logged as one warning line with the error's type only (an outage is an operations
    event: no traceback, and never the driver's message)."""
    from flask import make_response

    from .logs import logged_path
    log.warning("database unavailable: %s", type(e).__name__, extra={"path": logged_path()})
    response = make_response(error_response(503))
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response


def replace_with_outage(response, e: Exception) -> None:
    """Turn ``response`` - already made, when writing the session failed - into :func:`outage_response`:
    its status and body, no cookie (the session was not stored) and no redirect; the security headers
    the response already carries stay."""
    outage = outage_response(e)
    response.status_code = outage.status_code
    response.set_data(outage.get_data())
    for name in ("Set-Cookie", "Location"):
        response.headers.remove(name)
    for name in ("Content-Type", "Retry-After", "Cache-Control"):
        response.headers[name] = outage.headers[name]


def abort_with(status: int, message: str):
    """Abort with a message meant for the user (shown as is)."""
    from werkzeug.exceptions import default_exceptions
    exc = default_exceptions[status](description=message)
    exc._idp_message = True
    raise exc
