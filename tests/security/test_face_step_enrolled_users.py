"""A user who enrolled (opted in to face sign-in) always gets the face step, also for face-optional
clients: the password alone never completes their sign-in."""
from __future__ import annotations

from ._face import *  # noqa: F401,F403
from ._face import ACR_PWD, ACR_PWD_FACE, PASSWORD, UserAgent, _code, face_rp


def test_enrolled_user_gets_the_face_step_for_a_face_optional_client(app, live, enrolled, new_user, people):
    optional = face_rp(live, app, "optional")
    b = UserAgent(live)
    page, _ = b.go(optional.authorize_url())
    page, loc = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    assert loc is None and page.url.endswith("/face/verify")
    result = b.capture(page, "verify", people["alice"][5:8])
    page, loc = b.go(result["redirect"])
    claims = optional.id_token_claims(_code(loc or b.consent_and_code(page)))
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # A user who never enrolled: the face-optional client gets password only.
    new_user("bob")
    c = UserAgent(live)
    page, _ = c.go(optional.authorize_url())
    page, loc = c.submit(page, "/login", {"username": "bob", "password": PASSWORD})
    claims = optional.id_token_claims(_code(loc or c.consent_and_code(page)))
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PWD
