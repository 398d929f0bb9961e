"""Requests the IdP itself sends to addresses its clients chose (no Flask): which destination addresses are
allowed, and an HTTP POST that connects only to an address that was checked.

An address is *public* when it is globally routable unicast: not loopback, private (RFC 1918), shared
(100.64/10), link-local (169.254/16 with the cloud metadata address, fe80::/10), unique-local (fc00::/7),
multicast, reserved, documentation, unspecified (0.0.0.0, ::) or broadcast — and, for IPv6 forms that carry
an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``), only when that
IPv4 address is public too; IPv4-compatible ``::a.b.c.d`` is never allowed.

``post_form`` resolves the host once (every A/AAAA answer), refuses the whole destination when any answer is
not allowed, then opens the TCP connection to one of those same addresses: there is no second lookup between
the check and the connection, so a name that rebinds cannot switch it. For https the TLS handshake still sends
the host name (SNI) and verifies the certificate against it (certifi's public CAs, or the operator's
``IDP_OUTBOUND_CA_BUNDLE``). Redirects are never followed; environment proxy
settings are not used (a proxy would resolve the name itself).
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as _Urllib3Error

getaddrinfo = socket.getaddrinfo  # the resolver (a module attribute, so tests can play a rebinding name server)

ADDRESSES_TRIED = 3  # a name's first addresses a POST tries in turn (each up to the timeout) when one does not connect
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class OutboundError(Exception):
    """A request could not be made or completed; ``str()`` is a short reason fit for a job's ``last_error``
    and the audit log (an error type or a refused address, never a response body)."""


class AddressNotAllowed(OutboundError):
    """The destination resolves (or is) an address the caller may not reach; nothing was sent."""


def refusal(ip: str) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``, ...), or None when it is."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return refusal(str(addr.ipv4_mapped))
        if addr.sixtofour is not None:
            return refusal(str(addr.sixtofour))
        if any(addr in net for net in _NAT64):
            return refusal(str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)))
        if addr in _IPV4_COMPATIBLE:
            return "unspecified" if addr.is_unspecified else ("loopback" if addr.is_loopback else "IPv4-compatible")
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(addr, f"is_{kind}"):
            return kind.replace("_", "-")
    if addr.version == 6 and addr.is_site_local:
        return "site-local"
    if not addr.is_global:
        return "not globally routable"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself), in resolver order, or
    ``OutboundError("name not resolved")``."""
    try:
        answers = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise OutboundError("name not resolved") from None
    ips = list(dict.fromkeys(a[4][0] for a in answers if a[0] in (socket.AF_INET, socket.AF_INET6)))
    if not ips:
        raise OutboundError("name not resolved")
    return ips


def _target(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path_and_query)`` of an absolute http(s) URL, or ``OutboundError``."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise OutboundError("invalid URL") from None
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
        raise OutboundError("invalid URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def checked_addresses(url: str, *, allow_private: bool) -> list[str]:
    """The addresses ``url``'s host resolves to, all of them allowed: ``AddressNotAllowed`` when any answer
    is not public (unless ``allow_private``), ``OutboundError`` when the URL or the name is unusable."""
    _, host, port, _ = _target(url)
    ips = resolve(host, port)
    if not allow_private:
        for ip in ips[:ADDRESSES_TRIED]:
            why = refusal(ip)
            if why:
                raise AddressNotAllowed(f"address not allowed: {ip} ({why})")
    return ips


def _ca_bundle() -> str:
    """The CA bundle ``requests`` uses by default (certifi's)."""
    import certifi
    return certifi.where()


def post_form(url: str, fields: dict, *, timeout: float, allow_private: bool, headers: dict | None = None,
              ca_certs: str | None = None) -> int:
    """POST ``fields`` form-encoded to ``url`` and return the response status (the body is not read).

    The host is resolved once and checked (``checked_addresses``); the connection goes to those addresses
    only (the first of at most ``ADDRESSES_TRIED`` that accepts), with ``Host`` and, for https, SNI and certificate verification for the
    name in ``url``. No redirects, no retries, no proxies; ``timeout`` bounds the connection and each read.
    Raises ``AddressNotAllowed`` (nothing sent) or ``OutboundError``."""
    scheme, host, port, path = _target(url)
    ips = checked_addresses(url, allow_private=allow_private)
    netloc = urlsplit(url).netloc
    body = urlencode(fields)
    send_headers = {"Host": netloc, "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    last: Exception | None = None
    for ip in ips[:ADDRESSES_TRIED]:
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(ip, port, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                               retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
                                               ca_certs=ca_certs or _ca_bundle(), server_hostname=host,
                                               assert_hostname=host)
        else:
            pool = urllib3.HTTPConnectionPool(ip, port, timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                              retries=False, maxsize=1)
        try:
            response = pool.urlopen("POST", path, body=body, headers=send_headers, redirect=False,
                                    retries=False, preload_content=False, assert_same_host=False)
            status = response.status
            response.release_conn()
            return status
        except urllib3.exceptions.ConnectTimeoutError as e:  # refused, unreachable, timed out: try the next one
            last = e
        except (_Urllib3Error, OSError) as e:
            raise OutboundError(type(e).__name__) from None
        finally:
            pool.close()
    raise OutboundError(type(last).__name__ if last else "no address")
