"""A ``MONGODB_URI`` pymongo cannot parse stops every ``idp`` command, ``idp serve`` too, with one
``configuration error:`` line and status 1 (as any other bad setting), never a traceback, and the line never
shows the URI's user name or password: an unescaped '/' or ':' in a password makes the rest of it read as a port."""
from __future__ import annotations


import pytest

from .conftest import free_port, idp_env, run_cli, serve_refused

# (URI, what must not be shown)
MALFORMED = [
    ("mongodb://admin:s3cret@db.example:99999/", "s3cret"),      # port above 65535
    ("mongodb://admin:pa/ss@db.example/", "pa/ss"),              # unescaped '/' in the password
    ("mongodb://admin:pa:ss@db.example/", "pa:ss"),              # unescaped ':' in the password
    ("mongodb://admin:s3cret@[::1/", "s3cret"),                  # unclosed IPv6 bracket
    ("mongodb://admin:s3cret@@db.example/", "s3cret"),           # unescaped '@' (was an `error: database:` line)
]


@pytest.mark.parametrize("uri,secret", MALFORMED)
def test_a_cli_command_reports_a_malformed_uri_in_one_line(tmp_path, uri, secret):
    r = run_cli(idp_env(tmp_path, MONGODB_URI=uri), "users", "list")
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: MONGODB_URI"), r.stderr[-800:]
    assert secret not in r.stderr and "admin" not in r.stderr, r.stderr


def test_idp_serve_reports_a_malformed_uri_in_one_line_before_it_starts(tmp_path):
    env = idp_env(tmp_path, MONGODB_URI="mongodb://admin:pa/ss@db.example/")
    out = serve_refused(env, "--port", str(free_port()), "--workers", "1")
    assert out.strip().startswith("configuration error: MONGODB_URI") and "Traceback" not in out, out[-800:]
    assert "pa/ss" not in out
