"""Regressions found by the endpoint fuzzer: a malformed ``Authorization`` header at the client-authenticated
endpoints, and a JSON body posted to an HTML form, are answered with a 4xx, never a 500."""
from __future__ import annotations

import base64
import re

import pytest
import requests

from oauth.conftest import PASSWORD, cheap_password_hashing, idp, make_server, rp, user  # noqa: F401

MALFORMED = ["Bearer ", "Basic ", "Basic\t", "x \t", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
             "Basic \u00e9\u00e9\u00e9\u00e9", "Basic " + base64.b64encode(b"no-colon-\xe9").decode()]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_authorization_header_is_invalid_client(idp, rp, path, header):
    data = {"grant_type": "authorization_code", "code": "x", "token": "y"}
    r = requests.post(f"{idp.url}{path}", data=data, headers={"Authorization": header.encode("latin-1")})
    # RFC 6749 §5.2: a client that tried the Authorization header gets 401 and a challenge for Basic.
    assert r.status_code == 401, (header, r.status_code, r.text[:200])
    assert r.json()["error"] == "invalid_client"
    assert r.headers["WWW-Authenticate"].startswith("Basic "), r.headers


def test_well_formed_basic_still_authenticates(idp, rp):
    r = requests.post(f"{idp.url}/oauth/introspect", data={"token": "nope"}, auth=(rp.client_id, rp.secret))
    assert r.status_code == 200 and r.json() == {"active": False}


@pytest.mark.parametrize("body", ["false", "1.5", "null", '"text"', "[1, 2]", '[["username", "alice"]]', "{}"])
def test_json_body_to_a_form_is_not_form_input(idp, user, body):
    s = requests.Session()
    page = s.get(f"{idp.url}/login")
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page.text).group(1)
    for path in ("/login", "/register"):
        r = s.post(f"{idp.url}{path}", data=body, headers={"Content-Type": "application/json", "X-CSRFToken": token},
                   allow_redirects=False)
        assert r.status_code == 200, (path, body, r.status_code)  # the form again, nothing accepted
    # the JSON pairs form did not sign anyone in
    assert s.get(f"{idp.url}/account", allow_redirects=False).status_code == 302
    r = s.post(f"{idp.url}/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD},
               allow_redirects=False)
    assert r.status_code == 302
    page = s.get(f"{idp.url}/account/password")
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page.text).group(1)
    r = s.post(f"{idp.url}/account/password", data=body,
               headers={"Content-Type": "application/json", "X-CSRFToken": token}, allow_redirects=False)
    assert r.status_code == 200, (body, r.status_code)


def test_a_file_part_in_a_form_is_not_form_input(idp, user):
    """No page takes a file: a multipart body whose text field comes as a file part gets the form again with
    that field's message (it was a 500: the field's rule read a file object), and nothing is created; text
    parts of a multipart body are still read."""
    s = requests.Session()
    page = s.get(f"{idp.url}/register")
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page.text).group(1)
    fields = {"csrf_token": token, "name": "Bob", "email": "bob@example.org", "password": PASSWORD,
              "confirm": PASSWORD}
    r = s.post(f"{idp.url}/register", data=fields, files={"username": ("u.txt", b"bob")}, allow_redirects=False)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert "Choose a username." in r.text
    assert idp.db.users.count_documents({"email": "bob@example.org"}) == 0
    r = s.post(f"{idp.url}/login", data={"csrf_token": token, "username": "alice"},
               files={"password": ("p.txt", PASSWORD.encode())}, allow_redirects=False)
    assert r.status_code == 200 and "Enter your password" in r.text, (r.status_code, r.text[:300])
    r = s.post(f"{idp.url}/login", files={"csrf_token": (None, token), "username": (None, "alice"),
                                            "password": (None, PASSWORD)}, allow_redirects=False)
    assert r.status_code == 302  # the same fields as multipart text parts sign in
