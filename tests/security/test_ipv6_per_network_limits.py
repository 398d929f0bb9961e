"""Per-IP limits count an IPv6 client by its /64: one subscriber holds at least a /64 and can send each
request from a fresh address in it, which must not give it a fresh budget of failed passwords,
registrations or reset mails (each of these limits was bypassed that way). Real app, real database."""
from __future__ import annotations

import pytest

from accounts.conftest import GOOD_PASSWORD, Browser, alert
from accounts.conftest import make_app  # noqa: F401  (fixture)
from support.fixtures import away_from_a_rate_window_edge  # noqa: F401  (fixture)

INVALID = "Invalid username or password."
NET = "2001:db8:1:2"  # one /64 (documentation range)


def _client(app, host: int, net: str = NET) -> Browser:
    return Browser(app.test_client(), remote_addr=f"{net}::{host:x}")


def test_failed_passwords_from_one_ipv6_64_share_one_counter(make_app):  # noqa: F811
    from idp.accounts import users
    app = make_app(login_ip_free_failures=3)
    users.create_user(app.extensions["db"], "alice", "alice@example.com", GOOD_PASSWORD)
    for i in range(3):  # spraying names, each guess from another address of the same /64
        assert alert(_client(app, 0x100 + i).login(f"nobody{i}", "wrong").text) == INVALID
    assert _client(app, 0xbeef).login("nobody9", "wrong").status_code == 429
    # the audit log still names each full address
    ips = {d["ip"] for d in app.extensions["db"].audit_log.find({"event": "account.login_failed"})}
    assert ips == {f"{NET}::{0x100 + i:x}" for i in range(3)}
    # another /64 (another subscriber) is not blocked
    assert _client(app, 1, "2001:db8:1:3").login("alice", GOOD_PASSWORD).status_code == 302


def test_registrations_from_one_ipv6_64_share_one_limit(make_app):  # noqa: F811
    app = make_app(register_ip_limit=2)
    for i in range(2):
        assert _client(app, 0x200 + i).register(f"user{i}").status_code == 302
    assert _client(app, 0x2ff).register("user9").status_code == 429
    assert app.extensions["db"].users.count_documents({}) == 2


@pytest.mark.usefixtures("away_from_a_rate_window_edge")
def test_reset_mails_from_one_ipv6_64_share_one_limit(make_app):  # noqa: F811
    app = make_app(reset_ip_limit=2)
    for i in range(2):
        assert _client(app, 0x300 + i).submit("/forgot", {"login": f"nobody{i}"}).status_code == 200
    assert _client(app, 0x3ff).submit("/forgot", {"login": "nobody9"}).status_code == 429


@pytest.mark.parametrize("address, key", [
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped: counted as the IPv4 client it is
    ("64:ff9b::c000:207", "192.0.2.7"),  # NAT64 well-known prefix: every IPv4 client shares its /64
    ("64:ff9b::c633:6401", "198.51.100.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo (RFC 4380 example): the client's IPv4
    # 6to4 (RFC 3056): the site behind 192.0.2.7 holds 2002:c000:207::/48, 2**16 /64s: one client
    ("2002:c000:207:1::1", "192.0.2.7"),
    ("2002:c000:207:ffff::2", "192.0.2.7"),
    ("192.0.2.7", "192.0.2.7"),
    # an address with the client's port (some proxies write X-Forwarded-For so): the port is no new client
    ("198.51.100.7:51234", "198.51.100.7"),
    ("[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"),
    ("", ""),
    ("unix:/run/idp.sock", "unix:/run/idp.sock"),
])
def test_limit_address(address, key):
    from idp.web.proxy import limit_address
    assert limit_address(address) == key
