"""A user who enrolled (opted in to face sign-in) always gets the face step, also for face-optional
clients: the password alone never completes their sign-in."""
from __future__ import annotations

from ._face import *  # noqa: F401,F403
from ._face import ACR_PWD, ACR_PWD_FACE, UserAgent, face_rp, sign_in


def test_enrolled_user_gets_the_face_step_for_a_face_optional_client(app, live, enrolled, new_user, people):
    optional = face_rp(live, app, "optional")
    claims = sign_in(UserAgent(live), optional, "alice", people["alice"][5:8])  # asserts the face step comes
    assert claims["amr"] == ["pwd", "face"] and claims["acr"] == ACR_PWD_FACE

    # A user who never enrolled: the face-optional client gets password only.
    new_user("bob")
    claims = sign_in(UserAgent(live), optional, "bob")
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PWD
