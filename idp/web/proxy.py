"""The client's address and scheme behind reverse proxies (WSGI middleware, installed by the app factory).

Every per-IP limit reads ``request.remote_addr``; behind a TLS proxy that is the proxy's address, shared by
everyone. ``IDP_TRUSTED_PROXIES`` says which hops may tell the real client address (``X-Forwarded-For``)
and scheme (``X-Forwarded-Proto``):

* empty (default): no proxy is trusted; forwarding headers are ignored and the client is the TCP peer.
* ``N`` (a hop count): exactly N proxies always stand in front and the IdP cannot be reached around them;
  the client is the N-th address from the right of ``X-Forwarded-For`` (werkzeug's ``ProxyFix``).
* ``CIDR[,CIDR...]``: the proxies' addresses (never all of them: ``0.0.0.0/0`` or ``::/0`` is refused). Only when the TCP peer is inside, ``X-Forwarded-For`` is
  read from the right, skipping addresses inside the list; the first other address is the client. A
  client cannot choose its address by sending the header itself: entries left of the one the trusted
  proxy appended are never used, and from an untrusted peer the header is ignored entirely.

The original peer stays in ``environ["idp.proxy.peer"]``.
"""
from __future__ import annotations

import ipaddress
import re

from werkzeug.middleware.proxy_fix import ProxyFix

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(value: str) -> _IP | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def parse(setting: str | None) -> int | tuple | None:
    """``None`` (trust nobody), a hop count, or a tuple of networks; a malformed value stops start-up."""
    value = (setting or "").strip()
    if not value or value == "0":
        return None
    if value.isdigit():
        return int(value)
    try:
        networks = tuple(ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"configuration error: IDP_TRUSTED_PROXIES={setting!r} is neither a hop count nor "
                         "a comma-separated list of IP addresses/CIDR networks") from None
    if any(net.prefixlen == 0 for net in networks):
        # every peer and every address in the header would be a trusted proxy: the client's own leftmost entry wins
        raise SystemExit(f"configuration error: IDP_TRUSTED_PROXIES={setting!r} trusts every address, so every client "
                         "names its own address and no per-IP limit holds; list the proxies' networks, or give the "
                         "number of proxies in front (a hop count)")
    return networks


class TrustedProxies:
    """Rewrites ``REMOTE_ADDR`` (and ``wsgi.url_scheme``) from headers set by trusted proxies only."""

    def __init__(self, app, networks: tuple):
        self.app = app
        self.networks = networks

    @classmethod
    def wrap(cls, wsgi_app, setting: str | None):
        """``wsgi_app`` behind the proxies ``setting`` trusts (unchanged when it trusts none)."""
        trusted = parse(setting)
        if trusted is None:
            return wsgi_app
        if isinstance(trusted, int):
            return ProxyFix(wsgi_app, x_for=trusted, x_proto=trusted, x_host=0, x_port=0, x_prefix=0)
        return cls(wsgi_app, trusted)

    def _trusted(self, ip: _IP | None) -> bool:
        return ip is not None and any(ip in net for net in self.networks)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        if self._trusted(_ip(peer)):
            client, hops = peer, 1  # hops: trusted proxies between the client and us
            forwarded = [a for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
            for entry in reversed(forwarded):
                ip = _ip(entry)
                if ip is None:  # not written by a trusted proxy: stop at the last address we can vouch for
                    break
                client = str(ip)
                if not self._trusted(ip):
                    break
                hops += 1
            protos = [p.strip().lower() for p in environ.get("HTTP_X_FORWARDED_PROTO", "").split(",") if p.strip()]
            proto = protos[max(0, len(protos) - hops)] if protos else None
            environ["idp.proxy.peer"] = peer
            environ["REMOTE_ADDR"] = client
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)


#: Per-IP limits count an IPv6 client by this prefix: a subscriber or site is given at least a /64 (RFC 6177),
#: so one client can send from 2**64 addresses, each with a fresh budget if limits counted single addresses.
IPV6_LIMIT_PREFIX = 64


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix: IPv4 clients translated to IPv6
# An address followed by the client's port ("198.51.100.7:51234", "[2001:db8::9]:443"), as some proxies write
# X-Forwarded-For (a hop count in IDP_TRUSTED_PROXIES passes the value on unchanged).
_WITH_PORT = re.compile(r"^\[([^\]]+)\]:\d{1,5}$|^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")


def limit_address(address: str | None) -> str:
    """The client as every per-IP limit counts it (``request.remote_addr`` in): an IPv4 address itself, an
    IPv6 address as its /64 network, anything else unchanged. An IPv6 address that carries an IPv4 client
    (IPv4-mapped, the NAT64 well-known prefix, Teredo, 6to4) counts as that IPv4 address: NAT64 and Teredo
    clients share one /64, and one of them must not exhaust the others' limit; a 6to4 site holds a /48 of
    2**16 /64s. A port after the address is dropped (each connection has its own). The audit log keeps the
    full address; only the limits' keys are widened."""
    ip = _ip(address or "")
    if ip is None and (port := _WITH_PORT.match((address or "").strip())):
        ip = _ip(port.group(1) or port.group(2))
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip in _NAT64:
            return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.teredo is not None:
            return str(ip.teredo[1])
        if ip.sixtofour is not None:
            return str(ip.sixtofour)
        return str(ipaddress.IPv6Network((ip, IPV6_LIMIT_PREFIX), strict=False))
    return str(ip) if ip is not None else (address or "")
