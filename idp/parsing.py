"""Readings of setting values that the configuration and the modules whose settings it checks share (a switch,
a loopback host, the longest request line served). Nothing here reads the configuration, so both sides import it."""
from __future__ import annotations

import ipaddress

MAX_REQUEST_LINE = 8190  # bytes of "GET <url> HTTP/1.1" the server (gunicorn) accepts; a longer one is its 400


def fits_request_line(url: str, method: str = "GET") -> bool:
    """Whether a browser sent to ``url`` gets past the server's request line limit (:data:`MAX_REQUEST_LINE`)."""
    return len(method) + 1 + len(url.encode()) + len(" HTTP/1.1") <= MAX_REQUEST_LINE


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_switch(value: str) -> bool:
    """A switch; any other spelling raises ValueError (a typo must not silently mean "off")."""
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError(value)
    return word in _TRUE


def is_loopback_host(host: str) -> bool:
    """``host`` names this machine only: ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
