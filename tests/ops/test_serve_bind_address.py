"""``idp serve`` with an http issuer listens on a loopback address only (the http issuer is for development)."""
from __future__ import annotations


import pytest

from idp.config import Config
from idp.serving import check_bind_address

from .conftest import free_port, idp_env, serve_refused


def test_an_http_issuer_is_not_served_to_the_network(tmp_path):
    """`idp serve --host 0.0.0.0` (the image's command) with the default http://127.0.0.1:5000 issuer served the
    sign-in, registration and account pages to every address of the host in clear text, the session cookie
    without Secure: Config refuses an http issuer on any other host, and serving it on every interface is
    the same clear text. Now refused before anything starts, in one line."""
    output = serve_refused(idp_env(tmp_path / "data"), "--host", "0.0.0.0", "--port", str(free_port()))
    assert output.strip().startswith("configuration error: --host 0.0.0.0 with the http issuer"), output
    assert not (tmp_path / "data" / "embedded-db.json").exists()  # refused before the database was started


@pytest.mark.parametrize("issuer,host,allowed", [
    ("http://127.0.0.1:5000", "127.0.0.1", True), ("http://localhost:5000", "::1", True),
    ("http://127.0.0.1:5000", "::", False), ("http://127.0.0.1:5000", "", False),
    ("http://127.0.0.1:5000", "192.0.2.2", False), ("https://id.example", "0.0.0.0", True),
])
def test_which_bind_addresses_an_issuer_allows(issuer, host, allowed):
    config = Config(issuer=issuer)
    if allowed:
        check_bind_address(config, host)
    else:
        with pytest.raises(SystemExit, match="^configuration error: --host "):
            check_bind_address(config, host)
