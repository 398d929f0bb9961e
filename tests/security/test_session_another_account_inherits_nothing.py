"""Another account signing in on the login page of the same browser while an application's request is pending
(the first account signed in with its face, the page opened in another tab) starts a sign-in of its own: the
second account's ID token carries nothing of the first's - not its face (amr, acr), not its authentication time,
not its session id (``sid``, which back-channel logout and sign-out use to end what the first sign-in got)."""
from __future__ import annotations

import time

import pytest

from ._face import (  # noqa: F401  (fixtures)
    ACR_PWD, ACR_PWD_FACE, PASSWORD, UserAgent, _code, app, cheap_password_hashing, engine, enroll_user, face_rp,
    live, make_app, new_user, people, sign_in,
)


@pytest.mark.slow
def test_a_second_account_signing_in_while_a_request_is_pending_inherits_nothing(app, live, new_user, people):
    enroll_user(app, new_user, people["alice"])
    bob = new_user("bob")
    rp = face_rp(live, app, "optional")
    agent = UserAgent(live)
    alices = sign_in(agent, rp, "alice", people["alice"][5:8])
    assert alices["amr"] == ["pwd", "face"] and alices["acr"] == ACR_PWD_FACE and alices.get("sid")

    choice, _ = agent.go(rp.authorize_url(prompt="select_account"))  # tab A: a request pending for alice
    assert "Continue as alice" in choice.text
    time.sleep(1.1)  # a later second: an auth_time carried over from alice would show
    page, _ = agent.go("/login")  # tab B: bob signs in to the same browser
    page, loc = agent.submit(page, "/login", {"username": "bob", "password": PASSWORD})
    bobs = rp.id_token_claims(_code(loc or agent.consent_and_code(page)))
    assert bobs["sub"] == bob["_id"] != alices["sub"]
    assert bobs["amr"] == ["pwd"] and bobs["acr"] == ACR_PWD
    assert bobs["auth_time"] > alices["auth_time"]
    assert bobs.get("sid") and bobs["sid"] != alices["sid"]
