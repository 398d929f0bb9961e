"""The API path registry decides per path whether the browser session is used. A page added later under a
stateless prefix (``/oauth/``, ``/.well-known/``, ``/static/``) must not silently lose the session: the most
specific declared path decides, and the app refuses to start while a route under a stateless prefix is not
declared itself. Checked with the real app factory and a feature module added to it."""
from __future__ import annotations

import sys
import types

import pytest

from tests.accounts.conftest import GOOD_PASSWORD, Browser, make_app  # noqa: F401  (fixtures)


def _late_feature(monkeypatch, *, declare: bool):
    """A feature module (as ``idp.FEATURES`` lists them) serving a browser page at ``/oauth/device``."""
    from flask import Blueprint

    import idp

    module = types.ModuleType("late_feature")

    def init_app(app):
        from idp.signin.guards import signed_in_uid
        from idp.web.api import ApiPath, api_registry
        bp = Blueprint("late", __name__)

        @bp.route("/oauth/device")
        def device():
            return f"signed in: {signed_in_uid()}"

        app.register_blueprint(bp)
        if declare:
            api_registry(app).add(ApiPath("/oauth/device", "late.device", browser_session=True, json_errors=False))

    module.init_app = init_app
    monkeypatch.setitem(sys.modules, "late_feature", module)
    monkeypatch.setattr(idp, "FEATURES", (*idp.FEATURES, "late_feature"))


def test_an_undeclared_route_under_a_stateless_prefix_stops_the_start(make_app, monkeypatch):  # noqa: F811
    _late_feature(monkeypatch, declare=False)
    with pytest.raises(RuntimeError, match="/oauth/device"):
        make_app()


def test_a_declared_browser_path_under_a_stateless_prefix_gets_the_session(make_app, monkeypatch):  # noqa: F811
    from idp.accounts import users
    _late_feature(monkeypatch, declare=True)
    app = make_app()
    uid = users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)["_id"]
    b = Browser(app.test_client())
    assert b.login("alice", GOOD_PASSWORD).status_code == 302
    assert b.get("/oauth/device").text == f"signed in: {uid}"

    # The prefix's own endpoints stay stateless: a session cookie sent there is ignored.
    api = app.extensions["api_registry"]
    assert not api.is_stateless("/oauth/device")
    assert api.is_stateless("/oauth/token") and api.is_stateless("/oauth/unknown")
    assert api.is_stateless("/static/app.css") and api.is_stateless("/.well-known/openid-configuration")
    assert not api.is_stateless("/login") and not api.is_stateless("/api/face/verify/captures")


def test_the_most_specific_declared_path_decides():
    from idp.web.api import ApiPath, ApiRegistry
    api = ApiRegistry()
    api.add(ApiPath("/x/"), ApiPath("/x/pages/", browser_session=True, json_errors=False),
            ApiPath("/x/pages/raw", "raw"))
    assert api.is_stateless("/x/a") and api.json_errors("/x/a")
    assert not api.is_stateless("/x/pages/a") and not api.json_errors("/x/pages/a")
    assert api.is_stateless("/x/pages/raw") and api.json_errors("/x/pages/raw")
    assert not api.is_stateless("/y") and not api.json_errors("/y")
