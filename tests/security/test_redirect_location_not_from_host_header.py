"""The provider's own redirects never name a host the request chose. Werkzeug's slash redirect (a page asked for
without its trailing slash, ``/admin/clients`` -> ``/admin/clients/``) was an absolute URL built from the request's
``Host`` header and scheme: ``Host: evil.example`` came back as ``Location: http://evil.example/admin/clients/``
(a Host-header injection into a redirect: a cache or a proxy that forwards any Host passes it to others), and
behind a TLS proxy every such redirect said ``http://``. It is now a path on this site, as every other redirect
of the provider is. Real app over real HTTP (the request line and headers as sent)."""
from __future__ import annotations

import socket

from oauth.conftest import cheap_password_hashing, idp, make_server  # noqa: F401  (fixtures)


def _raw_get(url: str, path: str, headers: str) -> tuple[str, dict[str, str]]:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return head[0], {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}


def test_slash_redirect_is_a_path_whatever_the_host_header_says(idp):
    for path, target in (("/admin/clients", "/admin/clients/"), ("/admin/clients?x=1", "/admin/clients/?x=1"),
                         ("/admin", "/admin/")):
        status, headers = _raw_get(idp.url, path, "Host: evil.example\r\nX-Forwarded-Host: evil.example\r\n")
        assert " 308 " in status, (path, status)
        assert headers["location"] == target, (path, headers["location"])


def test_the_relative_redirect_still_leads_to_the_page(idp):
    import requests
    r = requests.get(f"{idp.url}/admin/clients", allow_redirects=True)
    assert r.history and r.history[0].status_code == 308
    assert r.url.startswith(idp.url) and r.url.split("?")[0].endswith("/login"), r.url
