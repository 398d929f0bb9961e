"""Wiring of the face feature: the sign-in step's place and rules, the warm-up, face disabled."""
from __future__ import annotations

import time

from idp import get_db
from idp.signin.flow import ACR_PWD_FACE, AuthState, PendingRequest, flow, flow_for


def _request(client_id=None, acr_values=()):
    return PendingRequest(rid="r", args={}, created=int(time.time()), min_auth_time=None, client_id=client_id,
                          acr_values=list(acr_values))


def test_face_step_rules(app, new_user):
    from idp.oauth.clients import create_client
    db = get_db(app)
    names = [s.name for s in flow_for(app).steps]
    assert names.index("face") == names.index("password") + 1
    required, _ = create_client(db, app.config["IDP"], "Strict", ["https://rp.example/cb"], face_policy="required")
    optional, _ = create_client(db, app.config["IDP"], "Lenient", ["https://rp.example/cb"], face_policy="optional")
    user = new_user("alice")
    pwd_only = AuthState(uid=user["_id"], auth_time=int(time.time()), amr=["pwd"])
    both = AuthState(uid=user["_id"], auth_time=int(time.time()), amr=["pwd", "face"])
    with app.test_request_context("/"):
        step = lambda state, req: (flow.next_step(state, req) or type("S", (), {"name": None})).name  # noqa: E731
        assert step(pwd_only, _request(required["client_id"])) == "face"
        assert step(pwd_only, _request("no-such-client")) == "face"  # unknown clients count as required
        assert step(pwd_only, _request(optional["client_id"])) is None
        assert step(pwd_only, _request(optional["client_id"], [ACR_PWD_FACE])) == "face"
        assert step(both, _request(required["client_id"])) is None
        # No pending request (account pages): only users with a template go through the face step.
        assert step(pwd_only, None) is None
        db.face_templates.insert_one({"_id": user["_id"]})
        assert step(pwd_only, None) == "face"
        assert step(both, None) is None
        # Enrolled users opted in: the face step also for face-optional clients.
        assert step(pwd_only, _request(optional["client_id"])) == "face"
        # A recovery code (amr otp) stands in where the face itself is not required, never where it is.
        otp = AuthState(uid=user["_id"], auth_time=int(time.time()), amr=["pwd", "otp"])
        assert step(otp, None) is None and step(otp, _request(optional["client_id"])) is None
        assert step(otp, _request(required["client_id"])) == "face"
        assert step(otp, _request(optional["client_id"], [ACR_PWD_FACE])) == "face"


def test_face_disabled_turns_the_step_off_and_the_pages_away(make_app, new_user):
    """With face sign-in off the face step is skipped where nothing requires the face (account pages, an
    enrolled user at a face-optional client); a request that requires it still needs it, and the flow
    reports it as unmet (the authorization endpoint refuses such a request) instead of skipping it."""
    from idp.oauth.clients import create_client
    app = make_app(face_enabled=False)
    db = get_db(app)
    user = new_user("alice")
    db.face_templates.insert_one({"_id": user["_id"]})
    optional, _ = create_client(db, app.config["IDP"], "Lenient", ["https://rp.example/cb"], face_policy="optional")
    state = AuthState(uid=user["_id"], auth_time=int(time.time()), amr=["pwd"])
    with app.test_request_context("/"):
        for lenient in (None, _request(optional["client_id"])):
            assert flow.next_step(state, lenient) is None and flow.unmet(state, lenient) is None
        for strict in (_request("any"), _request(optional["client_id"], [ACR_PWD_FACE])):
            assert flow.next_step(state, strict).name == "face"
            step, why = flow.unmet(state, strict)
            assert step.name == "face" and "face sign-in is turned off" in why
    from .conftest import Browser
    b = Browser(app)
    assert b.login("alice").headers["Location"].endswith("/account")
    assert b.get("/face/enroll").status_code == 503
    r = b.client.post("/api/face/verify/captures", json={})
    assert r.status_code == 400  # CSRF first
    b.page_csrf("/account")
    r = b.start("verify")  # with the session's CSRF token: "face sign-in is not available"
    assert r.status_code == 503 and r.get_json()["error"], r.get_data(as_text=True)[:300]
    assert get_db(app).face_captures.count_documents({}) == 0


def test_warm_up_loads_the_engine(app, engine):
    warmups = app.extensions["idp_warmups"]
    assert warmups
    for warm_up in warmups:
        warm_up()
    from idp.faceweb.views import engine as app_engine
    with app.app_context():
        assert app_engine() is engine  # the cached per-process engine for this configuration


def test_liveness_off_is_warned_at_start_up(make_app, caplog):
    """Without liveness a photograph of the enrolled face signs in with ``amr`` ``face``: an operator who turned
    it off (or copied a test setting) reads so in the log at start-up; on, nothing is said."""
    import logging
    with caplog.at_level(logging.WARNING, logger="idp.faceweb"):
        make_app(liveness_enabled=True)
    assert not [r for r in caplog.records if "IDP_LIVENESS_ENABLED" in r.getMessage()]
    with caplog.at_level(logging.WARNING, logger="idp.faceweb"):
        make_app()  # these tests' default: liveness off
    assert [r for r in caplog.records if "IDP_LIVENESS_ENABLED=false" in r.getMessage()
            and r.levelno == logging.WARNING], caplog.records
