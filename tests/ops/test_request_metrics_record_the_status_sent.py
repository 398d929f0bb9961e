"""The request metrics record the status of the response actually sent, also when a hook that runs after the view
replaced the view's answer: the account of the request deleted while its view ran (``erased_meanwhile``) turns a
200 page into the sign-in redirect. They recorded the view's 200. Real app, real database; the deletion runs for
real in the view (in the database call of its listing), and the recorder's calls are recorded as they pass
through to ``idp.metrics``."""
from __future__ import annotations

from accounts.conftest import Browser, make_app  # noqa: F401  (make_app: fixture)


def test_an_answer_replaced_after_the_view_is_recorded_with_the_status_sent(make_app, monkeypatch):
    from idp import metrics
    from idp.accounts import users
    from idp.oauth import consents

    app = make_app()
    db = app.extensions["db"]
    browser = Browser(app.test_client())
    assert browser.register().status_code == 302
    uid = db.users.find_one({"username": "alice"})["_id"]

    listing = consents.list_for_user

    def deleted_while_listing(db_, user_id):
        assert users.delete_user(db_, uid) is not None
        return listing(db_, user_id)

    observed, observe = [], metrics.observe_request

    def recorded(path, endpoint, status, *a, **kw):
        observed.append((path, status))
        return observe(path, endpoint, status, *a, **kw)

    monkeypatch.setattr(consents, "list_for_user", deleted_while_listing)
    monkeypatch.setattr(metrics, "observe_request", recorded)
    r = browser.get("/account/apps")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login"), r.status_code
    assert observed == [("/account/apps", 302)]
