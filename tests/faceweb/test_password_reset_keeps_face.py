"""A password reset does not touch the face factor: the template stays as enrolled, and a face-required
client still gets the face step at the next sign-in (real models, real SMTP server)."""
from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode

import pytest

from idp import get_db
from tests.conftest import mail_link

from .conftest import Browser

NEW_PASSWORD = "purple elephant violin sunrise"
CALLBACK = "https://rp.example/callback"


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(smtp_url=smtp_server.url)


def _authorize_path(client_id: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return "/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"})


def test_reset_keeps_the_face_template_and_face_required_clients_still_ask_for_the_face(app, enrolled, smtp_server):
    from idp.oauth.clients import create_client
    db = get_db(app)
    user, _ = enrolled
    template_before = db.face_templates.find_one({"_id": user["_id"]})
    status_before = db.face_status.find_one({"_id": user["_id"]})
    assert template_before is not None

    b = Browser(app)
    r = b.form("/forgot", {"login": "alice"})
    assert r.status_code == 200
    # the notices of the password sign-in from a new browser and of the enrollment ("Face sign-in was set up ...")
    # came first
    reset = [m for m in smtp_server.wait_for(3) if m["Subject"] == "Reset your password"][0]
    path = mail_link(reset, "reset")
    r = b.form(path, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/login"

    assert db.face_templates.find_one({"_id": user["_id"]}) == template_before
    assert db.face_status.find_one({"_id": user["_id"]}) == status_before

    doc, _secret = create_client(db, app.config["IDP"], "Face RP", [CALLBACK], face_policy="required")
    c = Browser(app)
    r = c.get(_authorize_path(doc["client_id"]))
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    r = c.login("alice", NEW_PASSWORD)
    location = r.headers["Location"]
    for _ in range(5):  # follow the IdP's own redirects until a page needs the person
        if not location.startswith("/") or location.startswith("/face/verify"):
            break
        r = c.get(location)
        if r.status_code != 302:
            break
        location = r.headers["Location"]
    assert location.startswith("/face/verify"), location
    assert not location.startswith(CALLBACK)
