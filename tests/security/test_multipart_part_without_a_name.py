"""A multipart form whose part has no ``name`` (``Content-Disposition: form-data`` alone, which RFC 7578 4.2
does not allow and no browser sends) is no server error: werkzeug keeps such a part under the key ``None``,
and Flask-WTF's CSRF check, looking through the form's keys for a prefixed token, called ``None.endswith``:
a 500 and a logged traceback for anyone, signed in or not, on every form. The part is no field: it is
ignored, as werkzeug ignores other malformed multipart input."""
from __future__ import annotations

import pytest
import requests

from oauth.conftest import PASSWORD, cheap_password_hashing, csrf_from, idp, make_server, user  # noqa: F401

BOUNDARY = "fuzz-boundary-7f3a"
NAMELESS = [f'--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n',
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; filename="a.txt"\r\n\r\nvalue\r\n']


def _multipart(fields: dict, extra: str) -> tuple[bytes, dict]:
    body = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    return (body + extra + f"--{BOUNDARY}--\r\n").encode(), {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize("extra", NAMELESS, ids=["field", "file"])
@pytest.mark.parametrize("path", ["/login", "/register", "/forgot", "/authorize/consent", "/account/sign-out"])
def test_nameless_part_without_a_csrf_token_is_the_form_expired_page(idp, path, extra):
    body, headers = _multipart({"username": "alice"}, extra)
    r = requests.post(idp.url + path, data=body, headers=headers, allow_redirects=False)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert "Form expired" in r.text and "Traceback" not in r.text


@pytest.mark.parametrize("extra", NAMELESS, ids=["field", "file"])
def test_nameless_part_is_ignored_by_the_sign_in_form(idp, user, extra):
    """With the token in the form the check never looked at the other keys; the sign-in goes on without the part."""
    s = requests.Session()
    token = csrf_from(s.get(idp.url + "/login").text)
    body, headers = _multipart({"csrf_token": token, "username": "alice", "password": PASSWORD}, extra)
    r = s.post(idp.url + "/login", data=body, headers=headers, allow_redirects=False)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert s.get(idp.url + "/account", allow_redirects=False).status_code == 200
