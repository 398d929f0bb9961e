"""Per-IP limits behind a reverse proxy: the client address comes from X-Forwarded-For only through
trusted hops (IDP_TRUSTED_PROXIES); from anyone else the header is ignored."""
from __future__ import annotations

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser, alert
from accounts.conftest import make_app  # noqa: F401  (fixture)

INVALID = "Invalid username or password."
PROXY = "127.0.0.1"


class Client(Browser):
    """A browser whose requests carry an X-Forwarded-For header (as a proxy, or a spoofer, sends it)."""

    def __init__(self, app, peer: str, forwarded_for: str | None = None):
        super().__init__(app.test_client(), remote_addr=peer)
        if forwarded_for is not None:
            self.environ["HTTP_X_FORWARDED_FOR"] = forwarded_for


def _failed_login_ips(app) -> list[str]:
    return [d["ip"] for d in app.extensions["db"].audit_log.find({"event": "account.login_failed"}).sort("_id", 1)]


def test_behind_a_trusted_proxy_one_clients_failures_do_not_block_everyone(make_app):  # noqa: F811
    from idp.accounts import users
    app = make_app(trusted_proxies="1", login_ip_free_failures=3)
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    attacker = Client(app, PROXY, "203.0.113.66")
    for i in range(3):
        assert alert(attacker.login(f"nobody{i}", "wrong").text) == INVALID
    assert attacker.login("nobody9", "wrong").status_code == 429  # the attacker's own address is blocked
    assert _failed_login_ips(app) == ["203.0.113.66"] * 3
    # another person behind the same proxy signs in normally
    assert Client(app, PROXY, "198.51.100.23").login("alice", GOOD_PASSWORD).status_code == 302


def test_without_trusted_proxies_the_header_is_ignored(make_app):  # noqa: F811
    app = make_app(login_ip_free_failures=3)
    assert app.config["IDP"].trusted_proxies == ""  # the default: no proxy trusted
    # a spoofed, changing X-Forwarded-For does not evade the per-IP limit ...
    for i in range(3):
        assert alert(Client(app, "192.0.2.10", f"10.9.9.{i}").login(f"nobody{i}", "wrong").text) == INVALID
    assert Client(app, "192.0.2.10", "10.9.9.99").login("nobody7", "wrong").status_code == 429
    assert _failed_login_ips(app) == ["192.0.2.10"] * 3
    # ... and naming someone else's address in it does not block them
    assert alert(Client(app, "198.51.100.5").login("nobody8", "wrong").text) == INVALID


def test_cidr_list_trusts_only_peers_inside_and_reads_from_the_right(make_app):  # noqa: F811
    app = make_app(trusted_proxies="10.0.0.0/8, 192.168.0.0/16", login_ip_free_failures=100)
    cases = [
        ("10.1.1.1", "203.0.113.9"),  # one trusted proxy
        ("10.1.1.1", "203.0.113.10, 192.168.4.4"),  # two trusted proxies
        ("10.1.1.1", "1.1.1.1, 203.0.113.11"),  # the client's own (spoofed) entry on the left is not used
        ("198.51.100.1", "203.0.113.12"),  # an untrusted peer: the header is ignored
        ("10.1.1.1", "garbage, 203.0.113.13"),  # junk further left does not matter
        ("10.1.1.1", "10.5.5.5"),  # only trusted addresses: the leftmost one
    ]
    for i, (peer, forwarded) in enumerate(cases):
        assert alert(Client(app, peer, forwarded).login(f"nobody{i}", "wrong").text) == INVALID
    assert _failed_login_ips(app) == ["203.0.113.9", "203.0.113.10", "203.0.113.11", "198.51.100.1",
                                      "203.0.113.13", "10.5.5.5"]


def test_trusted_hop_sets_the_scheme_untrusted_does_not():
    from idp.web.proxy import TrustedProxies

    seen = {}

    def wsgi(environ, start_response):
        seen.update(addr=environ["REMOTE_ADDR"], scheme=environ["wsgi.url_scheme"])
        start_response("200 OK", [])
        return [b""]

    def call(setting, peer, forwarded_for, proto):
        environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http", "HTTP_X_FORWARDED_FOR": forwarded_for,
                   "HTTP_X_FORWARDED_PROTO": proto}
        TrustedProxies.wrap(wsgi, setting)(environ, lambda *a: None)
        return seen["addr"], seen["scheme"]

    assert call("", "10.0.0.1", "203.0.113.1", "https") == ("10.0.0.1", "http")
    assert call("1", "10.0.0.1", "203.0.113.1", "https") == ("203.0.113.1", "https")
    assert call("2", "10.0.0.1", "6.6.6.6, 203.0.113.1, 10.0.0.2", "https, http") == ("203.0.113.1", "https")
    assert call("10.0.0.0/8", "10.0.0.1", "203.0.113.1", "https") == ("203.0.113.1", "https")
    assert call("10.0.0.0/8", "172.16.0.1", "203.0.113.1", "https") == ("172.16.0.1", "http")


@pytest.mark.parametrize("bad", ["-1", "one", "10.0.0.0/33", "10.0.0.1/8x", "1, 10.0.0.0/8"])
def test_a_wrong_setting_refuses_to_start(bad):
    from idp.web.proxy import TrustedProxies
    with pytest.raises(SystemExit, match="IDP_TRUSTED_PROXIES"):
        TrustedProxies.wrap(lambda e, s: [], bad)


@pytest.mark.parametrize("setting", ["0.0.0.0/0", "10.0.0.0/8, ::/0", "0.0.0.0/0,::/0"])
def test_trusting_every_address_stops_start_up(setting):
    """IDP_TRUSTED_PROXIES=0.0.0.0/0 ("trust all proxies") was taken: every peer and every address in the header
    counted as a trusted proxy, so the client's own leftmost entry was its address. With it, one real address
    sending X-Forwarded-For 10.9.9.<i> had 8 wrong passwords of 8 checked against a per-IP limit of 3 (no 429):
    every per-IP limit was bypassed. Now refused, with every other command's configuration errors."""
    from idp.config import Config
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_TRUSTED_PROXIES": setting})
    assert str(exc.value).startswith("configuration error: IDP_TRUSTED_PROXIES=") and "trusts every address" in str(exc.value)
    assert Config.from_env({"IDP_TRUSTED_PROXIES": "10.0.0.0/8,fd00::/8"}).trusted_proxies == "10.0.0.0/8,fd00::/8"
