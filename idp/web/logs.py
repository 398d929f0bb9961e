"""Structured logs with a request id; nothing secret ever reaches them.

Log calls pass only identifiers and outcomes; as a second line of defence the
formatter drops any ``extra`` field whose name suggests a secret.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time

_SECRET_NAMES = re.compile(r"pass|secret|token|code_verifier|authorization|cookie|image|frame|template|key", re.I)
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}
_REQ_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Query-string style values of codes and tokens inside a message (e.g. a request line logged by a
# library): the value is replaced, the name kept.
_SECRET_PARAMS = re.compile(r"\b(code|state|access_token|refresh_token|id_token|id_token_hint|token|"
                            r"client_secret|code_verifier|password)=[^&\s\"']+", re.I)


def redact(text: str) -> str:
    """``text`` with the values of code/token/secret parameters replaced by ``[redacted]``."""
    return _SECRET_PARAMS.sub(r"\1=[redacted]", text)


def logged_path() -> str:
    """The request's path for the access and error logs, without the secret of an emailed link: whoever
    reads the log must not be able to use the link. A matched route with a variable named like a secret
    (``_SECRET_NAMES``: ``<token>``) is logged as its rule, ``/reset/<token>``. A request that matches no
    route, or not with its method, or is redirected (doubled slash) is logged with every segment that some
    such route of the app's url_map would bind to that variable replaced by ``<token>``:
    ``/reset/<token>/extra``. Static segments compare without case; empty segments are ignored."""
    from flask import current_app, request
    if request.url_rule is not None:
        if any(_SECRET_NAMES.search(name) for name in request.view_args or {}):
            return request.url_rule.rule
        return request.path
    routes = current_app.extensions.get("idp.logged_path")
    if routes is None:  # the url_map is final once requests are served
        routes = current_app.extensions["idp.logged_path"] = _secret_routes(current_app.url_map)
    return _redacted_path(request.path, routes)


_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")  # <name>, <converter:name>, <converter(args):name>


def _secret_routes(url_map) -> list[list[tuple[re.Pattern, str | None, bool]]]:
    """Per rule of ``url_map`` with a secret-named variable, its segments up to the last such one: each
    ``(pattern of the segment, secret variable name or None, whether that variable spans the rest)``."""
    routes = []
    for rule in url_map.iter_rules():
        segments, last_secret = [], -1
        for text in [s for s in rule.rule.split("/") if s]:
            variables = _VARIABLE.findall(text)
            pattern = re.compile(".+".join(re.escape(part) for part in _VARIABLE.split(text)[::3]), re.I)
            secret = next((name for _, name in variables if _SECRET_NAMES.search(name)), None)
            segments.append((pattern, secret, any(conv == "path" for conv, _ in variables)))
            if secret:
                last_secret = len(segments) - 1
        if last_secret >= 0:
            routes.append(segments[:last_secret + 1])
    return routes


def _redacted_path(path: str, routes) -> str:
    """``path`` with every segment that a route of ``routes`` (``_secret_routes``) would bind to a secret
    variable replaced by ``<name>`` (a ``path``-converter variable takes the rest of the path)."""
    parts = [p for p in path.split("/") if p]
    secret_at: dict[int, str] = {}
    rest_from = len(parts)
    for segments in routes:
        if len(parts) < len(segments) or not all(pattern.fullmatch(part)
                                                 for part, (pattern, _, _) in zip(parts, segments)):
            continue
        for i, (_, secret, spans_rest) in enumerate(segments):
            if secret:
                secret_at.setdefault(i, secret)
                if spans_rest:
                    rest_from = min(rest_from, i + 1)
    if not secret_at:
        return path
    out = [f"<{secret_at[i]}>" if i in secret_at else part for i, part in enumerate(parts[:rest_from])]
    return "/" + "/".join(out) + ("/" if path.endswith("/") and rest_from == len(parts) else "")


def quiet_when_ok(view):
    """Mark ``view`` (a probe polled by load balancers and orchestrators every few seconds) so that its
    200 answers are logged at DEBUG, not INFO: the access log keeps the requests people make. Any other
    status is logged as usual."""
    view.quiet_when_ok = True
    return view


def current_request_id() -> str | None:
    try:
        from flask import g, has_request_context
        return g.get("request_id") if has_request_context() else None
    except RuntimeError:  # pragma: no cover
        return None


def _fields(record: logging.LogRecord) -> dict:
    """The record's ``extra`` fields, each whose name suggests a secret replaced by ``[redacted]``."""
    return {k: "[redacted]" if _SECRET_NAMES.search(k) else v
            for k, v in record.__dict__.items() if k not in _STD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        out = {
            "ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        rid = current_request_id()
        if rid:
            out["request_id"] = rid
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """One line for a person: the message, then the ``extra`` fields as ``name=value`` (secret-looking
    names redacted as in JSON), then the request id."""

    def format(self, record):
        rid = current_request_id()
        first, newline, rest = super().format(record).partition("\n")  # rest: a traceback, if any
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{first} {fields}" if fields else first
        return redact((f"{line} [rid={rid}]" if rid else line) + newline + rest)


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("werkzeug").setLevel("WARNING")


def init_request_ids(app) -> None:
    from flask import g, request

    log = logging.getLogger("idp.request")

    @app.before_request
    def _assign_request_id():
        rid = request.headers.get("X-Request-ID", "")
        g.request_id = rid if _REQ_ID.match(rid) else secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if app.config.get("IDP_ACCESS_LOG", True):
            view = app.view_functions.get(request.endpoint or "")
            quiet = getattr(view, "quiet_when_ok", False) and response.status_code == 200
            log.log(logging.DEBUG if quiet else logging.INFO, "request", extra={
                "method": request.method, "path": logged_path(), "status": response.status_code,
                "ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 1),
            })
        return response
