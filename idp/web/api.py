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

A path is exact, or a prefix when it ends with ``/``; the most specific declared path decides (an exact
path, else the longest prefix), so a page declared under an API prefix keeps the session. Once the app is
built ``apply`` checks both ways: every declared endpoint exists, so a renamed view cannot silently lose its
CSRF exemption or CORS; and every route under a stateless prefix is declared itself (its endpoint or exact
path), so a page added later under ``/oauth/`` stops the start instead of silently running without the
session.
"""
from __future__ import annotations

from dataclasses import dataclass

EXTENSION = "api_registry"


@dataclass(frozen=True)
class ApiPath:
    path: str                      # exact path, or a prefix when it ends with "/"
    endpoint: str | None = None    # the Flask endpoint served there (a prefix: the one under it; None: several or none)
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

    def _matching(self, path: str) -> ApiPath | None:
        """The most specific declared path for ``path``: the exact one, else the longest matching prefix."""
        best = None
        for p in self.paths:
            if path == p.path:
                return p
            if p.path.endswith("/") and path.startswith(p.path) and (best is None or len(p.path) > len(best.path)):
                best = p
        return best

    def is_stateless(self, path: str) -> bool:
        """The browser session is not used at ``path``: its most specific declared path has no ``browser_session``."""
        p = self._matching(path)
        return p is not None and not p.browser_session

    def json_errors(self, path: str) -> bool:
        p = self._matching(path)
        return p is not None and p.json_errors

    def answers_relying_parties(self, path: str) -> bool:
        """``path`` is a browser page a relying party sends the user to (one the discovery document names, with
        the browser session: the authorization and end-session endpoints): its answer is the relying party's
        (a ``prompt=none`` error, a post-logout redirect) and is not replaced by a page of ours."""
        p = self._matching(path)
        return p is not None and p.browser_session and p.metadata is not None

    def cors(self, endpoint: str | None) -> bool:
        return endpoint is not None and any(p.cors and p.endpoint == endpoint for p in self.paths)

    def metadata_urls(self, issuer: str) -> dict[str, str]:
        """``{member: issuer + path}`` for every path that names a discovery member."""
        return {p.metadata: issuer + p.path for p in self.paths if p.metadata}

    def undeclared_stateless_routes(self, app) -> list[str]:
        """Routes of ``app`` that fall under a stateless prefix without being declared themselves (by their
        endpoint or their exact path): each would run without the browser session, unnoticed."""
        out = []
        for rule in app.url_map.iter_rules():
            p = self._matching(rule.rule)
            if p is not None and not p.browser_session and p.path != rule.rule and p.endpoint != rule.endpoint:
                out.append(f"{rule.rule} ({rule.endpoint})")
        return out

    def apply(self, app) -> None:
        """Once every feature has declared its paths: refuse undeclared routes under a stateless prefix
        (``RuntimeError``), exempt the ``csrf=False`` views and add CORS headers."""
        from flask import request
        undeclared = self.undeclared_stateless_routes(app)
        if undeclared:
            raise RuntimeError("routes under a stateless API prefix must be declared in the API registry "
                               "(idp.web.api; browser_session=True for a page): " + ", ".join(undeclared))
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
