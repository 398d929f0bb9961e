"""Which endpoints are API endpoints, declared once per app and read by everything that treats them apart.

Features declare their API paths from ``init_app`` (``api_registry(app).add(...)``); the rest reads:

* the session interface (``idp.web.sessions``): a path that is not ``browser_session`` is stateless — a
  session cookie sent there is ignored, the session is neither read from nor written to the database;
* CSRF protection: the declared views with ``csrf=False`` are exempt (they take no browser form; the
  end-session page checks its own token on the one form it posts);
* errors (``idp.web.errors``): under a ``json_errors`` path an error is JSON, never an HTML page;
* CORS: the ``cors`` endpoints answer cross-origin calls of browser-based clients (no cookies involved);
* discovery: ``metadata_urls(issuer)`` is the discovery document's ``*_endpoint`` / ``jwks_uri`` members,
  built from the same paths the routes are registered at.

A path is exact, or a prefix when it ends with ``/``. Every declared endpoint must exist once the app is
built (``apply`` checks), so a renamed view cannot silently lose its CSRF exemption or CORS.
"""
from __future__ import annotations

from dataclasses import dataclass

EXTENSION = "api_registry"


@dataclass(frozen=True)
class ApiPath:
    path: str                      # exact path, or a prefix when it ends with "/"
    endpoint: str | None = None    # the Flask endpoint served there (None: a prefix of several or none)
    browser_session: bool = False  # the browser's session is used there (else the cookie is ignored)
    csrf: bool = True              # False: the view is exempt from CSRF protection
    json_errors: bool = True       # errors there are JSON
    cors: bool = False             # cross-origin calls allowed (Access-Control-Allow-Origin: *)
    metadata: str | None = None    # the discovery document's member naming this URL


class ApiRegistry:
    def __init__(self):
        self.paths: list[ApiPath] = []

    def add(self, *paths: ApiPath) -> None:
        for p in paths:
            if p not in self.paths:
                self.paths.append(p)

    def _matching(self, path: str):
        return (p for p in self.paths if path == p.path or (p.path.endswith("/") and path.startswith(p.path)))

    def is_stateless(self, path: str) -> bool:
        """The browser session is not used at ``path``: an API path declared without ``browser_session``."""
        return any(not p.browser_session for p in self._matching(path))

    def json_errors(self, path: str) -> bool:
        return any(p.json_errors for p in self._matching(path))

    def cors(self, endpoint: str | None) -> bool:
        return endpoint is not None and any(p.cors and p.endpoint == endpoint for p in self.paths)

    def metadata_urls(self, issuer: str) -> dict[str, str]:
        """``{member: issuer + path}`` for every path that names a discovery member."""
        return {p.metadata: issuer + p.path for p in self.paths if p.metadata}

    def apply(self, app) -> None:
        """Once every feature has declared its paths: exempt the ``csrf=False`` views and add CORS headers."""
        from flask import request
        csrf = app.extensions.get("csrf_protect")
        for p in self.paths:
            if p.endpoint is None:
                continue
            view = app.view_functions[p.endpoint]  # KeyError: a declared endpoint that no longer exists
            if not p.csrf and csrf is not None:
                csrf.exempt(view)

        @app.after_request
        def _cors(response):
            if self.cors(request.endpoint):
                response.headers["Access-Control-Allow-Origin"] = "*"
                if request.method == "OPTIONS":
                    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
                    response.headers["Access-Control-Allow-Methods"] = "GET, POST"
                    response.headers["Access-Control-Max-Age"] = "600"
            return response


def api_registry(app=None) -> ApiRegistry:
    """The registry of ``app`` (default: the current app), created on first use."""
    from flask import current_app
    return (app or current_app).extensions.setdefault(EXTENSION, ApiRegistry())
