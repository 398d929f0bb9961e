"""Relying-party clients: the ``clients`` collection and everything that changes it (no Flask).

Document::

    {_id: client_id, client_id, name, redirect_uris: [...], post_logout_redirect_uris: [...],
     public: bool, token_endpoint_auth_method: "none" | "client_secret_basic" (post is accepted too),
     secret_hash: hex HMAC-SHA-256(pepper, secret) | None, pepper_id?, scope: "openid profile email",
     grant_types: ["authorization_code", "refresh_token"], response_types: ["code"],
     face_policy: "required" | "optional", id_token_signed_response_alg: "RS256" | "ES256",
     skip_consent: bool, can_introspect: bool, enabled: bool, created_via, created_at, updated_at,
     secret_rotated_at, logo_uri?, policy_uri?, tos_uri?, backchannel_logout_uri?,
     backchannel_logout_session_required, default_max_age?: seconds | None}

``created_via`` (who registered the client, recorded since clients exist): "cli", "admin" or "demo" for an
operator, "registration" for RFC 7591. It decides where the IdP may send back-channel logout requests
(``private_addresses_allowed``).

``pepper_id`` names the pepper that keyed ``secret_hash`` (a non-secret id, ``idp.keyring.pepper_id``; absent on
hashes made before it was recorded, which are marked at their client's next authentication).

``grant_types`` may also hold ``client_credentials`` (confidential clients only, never by default);
``scope`` may hold ``offline_access`` (the scope that makes a sign-in yield a refresh token).

Secrets are 256-bit random values shown once (on create / rotate); only their HMAC is stored.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from pymongo import ASCENDING

from idp import audit
from idp.parsing import is_loopback_host
from idp.text import hidden_characters
from idp.keyring import current_and_retired, pepper_id
from idp.store import durable

from .scopes import OFFLINE_ACCESS, SUPPORTED_SCOPES

log = logging.getLogger("idp.oauth.clients")

DEFAULT_SCOPE = "openid profile email"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")  # client_credentials must be asked for explicitly
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # how a confidential client authenticates
USER_ONLY_SCOPES = ("openid", "offline_access")  # never granted to a client acting for itself
FACE_POLICIES = ("required", "optional")
ID_TOKEN_ALGS = ("RS256", "ES256")
DEMO_CLIENT_NAME = "Demo relying party"
EDITABLE = {"name", "redirect_uris", "post_logout_redirect_uris", "scope", "face_policy", "enabled",
            "skip_consent", "grant_types", "id_token_signed_response_alg", "can_introspect", "logo_uri",
            "policy_uri", "tos_uri", "backchannel_logout_uri", "backchannel_logout_session_required",
            "default_max_age"}
LINK_FIELDS = ("logo_uri", "policy_uri", "tos_uri")  # shown on the sign-in and consent pages
MAX_DEFAULT_MAX_AGE_S = 10 * 366 * 86400  # a default_max_age beyond ten years bounds nothing
# ``created_via`` of the clients an operator registered (CLI, admin pages, the demo); "registration" is RFC 7591
OPERATOR_SOURCES = frozenset({"cli", "admin", "demo"})
PUBLIC_BACKCHANNEL_REQUIRED = ("back-channel logout URI of a dynamically registered client must be an https URL "
                               "whose host resolves only to public addresses")


class ClientError(ValueError):
    """Invalid client settings (message meant for the operator)."""


# --- secrets -----------------------------------------------------------------

def _hmac(pepper: str, secret: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def hash_secret(config, secret: str) -> str:
    """The stored form of a client secret: HMAC-SHA-256 under the current pepper (``IDP_CLIENT_SECRET_PEPPER``)."""
    if not config.client_secret_pepper:
        raise RuntimeError("client_secret_pepper is not set (call Config.ensure_secrets())")
    return _hmac(config.client_secret_pepper, secret)


def _hashed_fields(config, secret: str) -> dict:
    return {"secret_hash": hash_secret(config, secret), "pepper_id": pepper_id(config.client_secret_pepper)}


def verify_secret(config, doc: dict, secret: str | None, db=None) -> bool:
    """Whether ``secret`` is the client's, under the current pepper or a retired one
    (``IDP_CLIENT_SECRET_PEPPERS_RETIRED``). Given ``db``, a secret verified under a retired pepper is
    re-hashed under the current one (so the retired pepper can be dropped once every active client has
    authenticated: ``secrets_under_other_peppers``), and a hash that does not record its pepper yet is
    marked; one conditional update, so a secret rotated meanwhile is never overwritten."""
    stored = doc.get("secret_hash")
    if not stored or not secret or not config.client_secret_pepper:
        return False
    for i, pepper in enumerate(current_and_retired(config, "client_secret_pepper")):
        if hmac.compare_digest(stored, _hmac(pepper, secret)):
            if db is not None and (i or doc.get("pepper_id") is None):
                db.clients.update_one({"_id": doc["_id"], "secret_hash": stored},
                                      {"$set": _hashed_fields(config, secret)})
                invalidate(db, doc["_id"])
            return True
    return False


def secrets_under_other_peppers(db, config) -> int:
    """Confidential clients whose stored secret is not known to be under the current pepper (a retired one,
    or not recorded): each is re-hashed at its next authentication. Drop a retired pepper when this is 0,
    or accept that those clients need ``idp clients rotate-secret``."""
    return db.clients.count_documents({"secret_hash": {"$type": "string"},
                                       "pepper_id": {"$ne": pepper_id(config.client_secret_pepper)}})


def new_client_id() -> str:
    """A random client id (``idp.store.new_id``: never a leading '-', for the CLI)."""
    from idp.store import new_id
    return new_id()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


# --- validation ----------------------------------------------------------------

# Limits of a client's registration, whoever registers it (CLI, admin pages, RFC 7591): every list of client
# metadata holds at most MAX_LIST_ITEMS entries (redirect URIs, post-logout redirect URIs; in a registration
# request also contacts, grant and response types), and a URI - or any entry of such a list - at most
# MAX_URI_LENGTH characters. A client's redirect URIs are compared on every authorization request and shown on
# the admin pages; thousands of them (or megabyte-long ones) serve no app and cost every request. Browsers and
# servers handle URLs of about 2,000 characters everywhere; 20 callbacks cover an app's environments.
MAX_LIST_ITEMS = 20
MAX_URI_LENGTH = 2000


#: a URI's authority as a CSP source may name it: a host name (letters, digits, ``.``, ``-``, ``_``) or a bracketed
#: IPv6 address, and a port; a ``;``, quote or comma would end the directive and start another
_ORIGIN_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def check_uri(uri: str, what: str) -> str:
    """``uri`` (stripped) when it is an absolute http(s) URL of printable ASCII (percent-encode the rest) of at
    most ``MAX_URI_LENGTH`` characters with a host, no user info and no fragment; else ``ClientError``."""
    uri = (uri or "").strip() if isinstance(uri, str) else ""
    if len(uri) > MAX_URI_LENGTH:  # refused before anything else, and never quoted
        raise ClientError(f"a {what} must be at most {MAX_URI_LENGTH} characters")
    if any(not 0x21 <= ord(c) <= 0x7E for c in uri):
        raise ClientError(f"{what} must be printable ASCII without spaces (percent-encode other characters)")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise ClientError(f"{what} is not a valid URL: {uri!r}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ClientError(f"{what} must be an absolute http(s) URL: {uri!r}")
    if "@" in parts.netloc:
        raise ClientError(f"{what} must not contain user information: {uri!r}")
    if not _ORIGIN_HOST.match(parts.netloc):  # the origin is named in pages' CSP (form-action, img-src)
        raise ClientError(f"{what} must have a plain host name or IP address, with an optional port: {uri!r}")
    if parts.fragment or "#" in uri:
        raise ClientError(f"{what} must not contain a fragment: {uri!r}")
    return uri


def csp_origin(uri: str | None) -> str | None:
    """The origin of an http(s) URI as a page's CSP names it (``form-action``, ``img-src``); None unless its
    authority is a plain host name or IP address (and port), as :func:`check_uri` requires of what is stored
    now: a ``;`` or quote there would end the CSP directive and start another one (an empty ``script-src``
    before the page's own turns every script off)."""
    parts = urlsplit(uri or "")
    if parts.scheme not in ("https", "http") or not _ORIGIN_HOST.match(parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def logo_origin(uri: str | None) -> str | None:
    """The https origin of a logo URI (:func:`csp_origin`), else None."""
    origin = csp_origin(uri)
    return origin if origin and origin.startswith("https://") else None


def tls_or_loopback(uri: str) -> bool:
    """Whether ``uri`` (through ``check_uri``) is https, or http to a loopback host (``parsing.is_loopback_host``;
    RFC 8252 §7.3). The one transport rule for URIs the IdP sends codes or requests to when the registrant is not
    an operator; it does not read ``AUTHLIB_INSECURE_TRANSPORT``, which an http (development) issuer sets."""
    parts = urlsplit(uri)
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))


def redirect_uri_registered(registered, uri: str, *, any_loopback_port: bool = True) -> bool:
    """Whether the authorization request's ``uri`` is one of the ``registered`` redirect URIs: the same string
    (RFC 9700 §4.1.3), or - RFC 8252 §7.3, native apps - an http URI to a loopback host that differs from a registered
    one in its port only ("the authorization server MUST allow any port to be specified at the time of the request
    for loopback IP redirect URIs": the app listens on a port the system gives it then). Same host as written, path
    and query; no user info. ``any_loopback_port`` false: the exact match only. The one comparison for authorization
    requests, error redirects and codes."""
    registered = list(registered or [])
    if uri in registered:
        return True
    if not any_loopback_port:
        return False
    try:
        asked = urlsplit(uri)
        if asked.scheme != "http" or not is_loopback_host(asked.hostname or "") or asked.username is not None \
                or asked.password is not None or asked.fragment or "#" in uri:
            return False
        asked.port  # noqa: B018  (ValueError: not a port)
        for known in registered:
            reg = urlsplit(known)
            if (reg.scheme, reg.hostname, reg.path, reg.query) == ("http", asked.hostname, asked.path, asked.query) \
                    and reg.username is None and not reg.fragment:
                return True
    except ValueError:
        return False
    return False


def check_uri_list(uris, what: str) -> list[str]:
    """The non-blank entries of ``uris``, each through ``check_uri``, without repeats; ``ClientError`` when
    there are more than ``MAX_LIST_ITEMS`` (counted as given, before anything else is checked)."""
    given = [u for u in uris or [] if u and (not isinstance(u, str) or u.strip())]
    if len(given) > MAX_LIST_ITEMS:
        raise ClientError(f"at most {MAX_LIST_ITEMS} {what}s are allowed ({len(given)} given)")
    return list(dict.fromkeys(check_uri(u, what) for u in given))


def normalize_scope(scope) -> str:
    items = scope.split() if isinstance(scope, str) else list(scope or [])
    unknown = [s for s in items if s not in SUPPORTED_SCOPES]
    if unknown:
        raise ClientError(f"unsupported scope(s): {' '.join(unknown)} (supported: {' '.join(SUPPORTED_SCOPES)})")
    if "openid" not in items:
        items.insert(0, "openid")
    return " ".join(dict.fromkeys(items))


def _validate(fields: dict, stored_grant_types: list[str] | None = None) -> dict:
    """``fields`` checked and normalised; ``stored_grant_types``: the client's own, when ``fields`` (a change)
    does not set them (a machine-only client needs no redirect URI, whichever write sets them)."""
    out = dict(fields)
    if "name" in out:
        out["name"] = (out["name"] or "").strip()
        if not out["name"] or len(out["name"]) > 100:
            raise ClientError("name is required (at most 100 characters)")
        if hidden_characters(out["name"]):  # shown on every sign-in and consent page
            raise ClientError("name must be text without control characters (such as line breaks)")
    if "redirect_uris" in out:
        uris = check_uri_list(out["redirect_uris"], "redirect URI")
        machine_only = out.get("grant_types", stored_grant_types) == ["client_credentials"]
        if not uris and not machine_only:
            raise ClientError("at least one redirect URI is required")
        out["redirect_uris"] = uris
    if "post_logout_redirect_uris" in out:
        out["post_logout_redirect_uris"] = check_uri_list(out["post_logout_redirect_uris"],
                                                          "post-logout redirect URI")
    for link in LINK_FIELDS:
        if link in out:
            value = (out[link] or "").strip()
            if value:
                value = check_uri(value, link)
                # a logo is loaded by the browser on our pages: https only (no http, no data: or script URLs),
                # from a plain host (its origin goes into the page's CSP)
                if link == "logo_uri" and logo_origin(value) is None:
                    raise ClientError(f"logo_uri must be an https URL with a plain host name: {value!r}")
            out[link] = value or None
    if "backchannel_logout_uri" in out:
        value = (out["backchannel_logout_uri"] or "").strip()
        if value:
            value = check_uri(value, "back-channel logout URI")
            # the IdP itself POSTs here: https, or http to a loopback host (development, the demo)
            if not tls_or_loopback(value):
                raise ClientError(f"back-channel logout URI must be https (http only on loopback): {value!r}")
        out["backchannel_logout_uri"] = value or None
    if "backchannel_logout_session_required" in out:
        out["backchannel_logout_session_required"] = bool(out["backchannel_logout_session_required"])
    if "default_max_age" in out:
        out["default_max_age"] = checked_max_age(out["default_max_age"])
    if "scope" in out:
        out["scope"] = normalize_scope(out["scope"])
    if "face_policy" in out and out["face_policy"] not in FACE_POLICIES:
        raise ClientError(f"face policy must be one of {', '.join(FACE_POLICIES)}")
    if "grant_types" in out:
        if len(out["grant_types"] or []) > MAX_LIST_ITEMS:
            raise ClientError(f"at most {MAX_LIST_ITEMS} grant types are allowed")
        gts = list(dict.fromkeys(out["grant_types"] or []))
        if not gts or any(g not in GRANT_TYPES for g in gts) or (
                "refresh_token" in gts and "authorization_code" not in gts):
            raise ClientError(f"grant types must be among {', '.join(GRANT_TYPES)} (refresh_token only with "
                              "authorization_code)")
        out["grant_types"] = gts
    if "id_token_signed_response_alg" in out and out["id_token_signed_response_alg"] not in ID_TOKEN_ALGS:
        raise ClientError(f"ID token algorithm must be one of {', '.join(ID_TOKEN_ALGS)}")
    for flag in ("enabled", "skip_consent", "can_introspect"):
        if flag in out:
            out[flag] = bool(out[flag])
    return out


def checked_max_age(value) -> int | None:
    """A client's ``default_max_age`` (OpenID Connect Registration 1.0 §2): None (no default: "" or None), or a
    whole number of seconds - an int, a float that is one (a JSON number, a number written from the mongo
    shell), or its decimal digits as a form sends them. The authorization endpoint applies it to requests that
    carry no ``max_age`` of their own (``applied_max_age``)."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 12:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DEFAULT_MAX_AGE_S:
        raise ClientError(f"default_max_age must be a whole number of seconds from 0 to {MAX_DEFAULT_MAX_AGE_S}")
    return value


def editable_max_age(doc: dict | None) -> str:
    """The stored ``default_max_age`` as the admin form shows it: as ``checked_max_age`` reads it (a whole
    double written from the mongo shell, 300.0, shows as 300, which the form accepts on save), empty for none,
    or, for a value that check refuses, the stored value as it is, for the administrator to mend."""
    value = (doc or {}).get("default_max_age")
    try:
        checked = checked_max_age(value)
    except ClientError:
        return str(value)
    return "" if checked is None else str(checked)


_WARN_EVERY_S = 300.0
_warned: dict[str, float] = {}  # client id -> when its unusable default_max_age was last logged (a log cache)
_warned_lock = threading.Lock()


def applied_max_age(doc: dict) -> int | None:
    """The ``default_max_age`` the authorization endpoint applies for the client ``doc``: its stored value as
    ``checked_max_age`` reads it. A stored value that check refuses (only a hand edit of the database writes
    one) is read as 0, a fresh sign-in for every request without its own ``max_age``, and logged as a warning
    naming the client, not the value (at most once per client every ``_WARN_EVERY_S`` per process, so a busy
    client does not flood the log). 0 because it is at least as strict as any value the operator can have
    meant, so no sign-in older than intended is accepted; not an error, because the request is not at fault
    and the client's users can still sign in."""
    try:
        return checked_max_age(doc.get("default_max_age"))
    except ClientError:
        now, client_id = time.monotonic(), str(doc.get("client_id"))
        with _warned_lock:
            if now < _warned.get(client_id, float("-inf")) + _WARN_EVERY_S:
                return 0
            if len(_warned) > 10000:
                _warned.clear()
            _warned[client_id] = now
        log.warning("client %s: its stored default_max_age is not a whole number of seconds from 0 to %d; "
                    "every sign-in for it must be fresh (max_age 0) until it is set again", doc.get("client_id"),
                    MAX_DEFAULT_MAX_AGE_S, extra={"client_id": doc.get("client_id")})
        return 0


def redirects_trusted(doc: dict | None) -> bool:
    """Whether the authorization endpoint may send an error to this client's (registered) redirect URI
    without the user's say (RFC 9700 4.11.2, the authorization server as open redirector): yes for a client
    an operator registered (``OPERATOR_SOURCES``), whose URIs the operator vouches for; not for one registered
    dynamically (or any other or missing ``created_via``), whose registrant chose the URI unchecked."""
    return bool(doc) and doc.get("created_via") in OPERATOR_SOURCES


def private_addresses_allowed(config, created_via: str | None) -> bool:
    """Whether the IdP may send a client's back-channel logout requests to loopback, private or other
    non-public addresses: yes for clients an operator registered (``OPERATOR_SOURCES``); for dynamically
    registered ones only when ``config.registration_private_addresses`` is on. Any other or missing
    ``created_via`` counts as dynamically registered (every client this code creates records one)."""
    return created_via in OPERATOR_SOURCES or bool(getattr(config, "registration_private_addresses", False))


def check_backchannel_destination(config, created_via: str | None, uri: str | None) -> None:
    """``ClientError`` unless ``uri`` (already through ``_validate``) may be registered for a client created
    via ``created_via``: without ``private_addresses_allowed``, https to a host whose every address resolves
    now and is public (``idp.oauth.outbound``). One message whatever the cause, so the answer does not tell
    what a name resolves to. The sender checks the addresses again before every request (names rebind)."""
    if not uri or private_addresses_allowed(config, created_via):
        return
    from . import outbound
    if urlsplit(uri).scheme != "https":
        raise ClientError(PUBLIC_BACKCHANNEL_REQUIRED)
    try:
        outbound.checked_addresses(uri, allow_private=False)
    except outbound.OutboundError:
        raise ClientError(PUBLIC_BACKCHANNEL_REQUIRED) from None


# --- a tiny read cache (authorization requests, sign-in pages, a token's client) ----------------

_CACHE_TTL = 5.0
_cache: dict[tuple[str, str], tuple[float, dict]] = {}
_cache_lock = threading.Lock()


def _cache_key(db, client_id):
    return (db.name, client_id)


def invalidate(db, client_id: str) -> None:
    with _cache_lock:
        _cache.pop(_cache_key(db, client_id), None)


def get_client_cached(db, client_id: str) -> dict | None:
    """``get_client`` through a short (5 s) in-process cache; writes through this module invalidate it in
    this process only, so another process may serve its copy for up to 5 s. Client authentication never uses
    it (``IdPAuthorizationServer.query_client_fresh``): a rotated secret or a disabled client is refused at
    once at the token, revocation and introspection endpoints. Only clients that exist are kept: an id of no
    client (anyone's ``/authorize?client_id=...``, up to the request line's 8 KB) is looked up each time, so
    anonymous requests cannot fill this process's memory with ids (10,000 of 8 KB before it was cleared)."""
    key = _cache_key(db, client_id)
    hit = _cache.get(key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    doc = get_client(db, client_id)
    if doc is None:
        return None
    with _cache_lock:
        if len(_cache) > 10000:
            _cache.clear()
        _cache[key] = (now + _CACHE_TTL, doc)
    return doc


# --- service ---------------------------------------------------------------------

def create_client(db, config, name: str, redirect_uris, public: bool = False, scope: str = DEFAULT_SCOPE,
                  face_policy: str = "required", post_logout_redirect_uris=None, *, grant_types=None,
                  skip_consent: bool = False, id_token_signed_response_alg: str = "RS256",
                  token_endpoint_auth_method: str | None = None, can_introspect: bool = False,
                  client_id: str | None = None, secret: str | None = None, logo_uri: str | None = None,
                  policy_uri: str | None = None, tos_uri: str | None = None,
                  backchannel_logout_uri: str | None = None, backchannel_logout_session_required: bool = False,
                  default_max_age: int | None = None, created_via: str = "cli", actor: str | None = None,
                  ip: str | None = None, user_agent: str | None = None) -> tuple[dict, str | None]:
    """Register a client. Returns ``(doc, plaintext_secret)``; the secret is None for public clients and
    is never stored (only its HMAC). ``actor`` (the admin's user id), ``ip`` and ``user_agent`` go into the
    audit entry; views pass them, the CLI does not."""
    fields = _validate({
        "name": name, "redirect_uris": list(redirect_uris or []),
        "post_logout_redirect_uris": list(post_logout_redirect_uris or []), "scope": scope,
        "face_policy": face_policy, "grant_types": list(grant_types or DEFAULT_GRANT_TYPES),
        "skip_consent": skip_consent, "id_token_signed_response_alg": id_token_signed_response_alg,
        "can_introspect": can_introspect, "logo_uri": logo_uri, "policy_uri": policy_uri, "tos_uri": tos_uri,
        "backchannel_logout_uri": backchannel_logout_uri,
        "backchannel_logout_session_required": backchannel_logout_session_required,
        "default_max_age": default_max_age,
    })
    check_backchannel_destination(config, created_via, fields["backchannel_logout_uri"])
    if public:
        if "client_credentials" in fields["grant_types"]:
            raise ClientError("the client_credentials grant is for confidential clients only")
        method = "none"
    else:
        method = token_endpoint_auth_method or "client_secret_basic"
        if method not in SECRET_AUTH_METHODS:
            raise ClientError("confidential clients authenticate with client_secret_basic or client_secret_post")
    client_id = client_id or new_client_id()
    secret = None if public else (secret or new_secret())
    now = datetime.now(timezone.utc)
    doc = {
        "_id": client_id, "client_id": client_id, **fields, "public": bool(public),
        "token_endpoint_auth_method": method, "response_types": ["code"],
        **(_hashed_fields(config, secret) if secret else {"secret_hash": None}), "enabled": True,
        "created_via": created_via, "created_at": now, "updated_at": now, "secret_rotated_at": now if secret else None,
    }
    db.clients.insert_one(doc)
    invalidate(db, client_id)
    audit.record(db, audit.CLIENT_CREATED, user_id=actor, client_id=client_id, ip=ip, user_agent=user_agent,
                 decision="created", details={"via": created_via, "public": bool(public),
                                              "scope": fields["scope"], "face_policy": fields["face_policy"]})
    return doc, secret


def get_client(db, client_id: str) -> dict | None:
    if not client_id or not isinstance(client_id, str):
        return None
    return db.clients.find_one({"_id": client_id})


def face_required_signin_clients(docs) -> list[str]:
    """The ids of the enabled clients among ``docs`` whose sign-ins need the face: face policy ``required``
    (the default) and the authorization code grant. With face sign-in off none of them can sign anyone in
    (their requests are refused with unmet_authentication_requirements)."""
    return [d["client_id"] for d in docs if d.get("face_policy", "required") == "required" and d.get("enabled", True)
            and "authorization_code" in d.get("grant_types", ["authorization_code"])]


def list_clients(db) -> list[dict]:
    return list(db.clients.find({}).sort("created_at", ASCENDING))


def update_client(db, client_id: str, *, config=None, actor: str | None = None, ip: str | None = None,
                  user_agent: str | None = None, **fields) -> dict | None:
    """Change the ``EDITABLE`` fields of a client. A new back-channel logout URI of a client that was not
    registered by an operator must pass ``check_backchannel_destination`` (``config`` None: the strict rule).
    A change is audited (``CLIENT_UPDATED``: the fields that changed, with their new values; ``actor``, ``ip``
    and ``user_agent`` as in ``create_client``): where codes go and what users are asked is on record."""
    unknown = set(fields) - EDITABLE
    if unknown:
        raise ClientError(f"not editable: {', '.join(sorted(unknown))}")
    current = get_client(db, client_id)
    fields = _validate(fields, (current or {}).get("grant_types"))
    if current is not None:
        if "client_credentials" in fields.get("grant_types", ()) and current.get("public"):
            raise ClientError("the client_credentials grant is for confidential clients only")
        if fields.get("backchannel_logout_uri") not in (None, current.get("backchannel_logout_uri")):
            check_backchannel_destination(config, current.get("created_via"), fields["backchannel_logout_uri"])
    fields["updated_at"] = datetime.now(timezone.utc)
    from pymongo import ReturnDocument
    doc = db.clients.find_one_and_update({"_id": client_id}, {"$set": fields}, return_document=ReturnDocument.BEFORE)
    invalidate(db, client_id)
    if doc is None:
        return None
    changed = {k: v for k, v in fields.items() if k != "updated_at" and doc.get(k) != v}
    if changed:
        audit.record(db, audit.CLIENT_UPDATED, user_id=actor, client_id=client_id, ip=ip, user_agent=user_agent,
                     decision="updated", details={"changed": sorted(changed), **changed})
    return {**doc, **fields}


def disable_client(db, client_id: str, *, actor: str | None = None, ip: str | None = None,
                   user_agent: str | None = None) -> bool:
    """Disable a client and end everything it holds (``tokens.revoke_client_tokens``: its tokens, its codes, a
    redemption in flight); whether it exists. Enabling it again revives none of that."""
    exists = _set_enabled(db, client_id, False, actor=actor, ip=ip, user_agent=user_agent)
    if exists:
        from .tokens import revoke_client_tokens
        revoke_client_tokens(db, client_id)
    return exists


def enable_client(db, client_id: str, *, actor: str | None = None, ip: str | None = None,
                  user_agent: str | None = None) -> bool:
    """Enable a client; whether it exists."""
    return _set_enabled(db, client_id, True, actor=actor, ip=ip, user_agent=user_agent)


def _set_enabled(db, client_id: str, enabled: bool, **who) -> bool:
    """Switch the client on or off; whether it exists. A switch is audited (``CLIENT_ENABLED`` /
    ``CLIENT_DISABLED``, ``who``: ``actor``, ``ip``, ``user_agent``); one that was so already is not."""
    res = db.clients.update_one({"_id": client_id, "enabled": {"$ne": enabled}},
                                {"$set": {"enabled": enabled, "updated_at": datetime.now(timezone.utc)}})
    invalidate(db, client_id)
    if res.modified_count:
        audit.record(db, audit.CLIENT_ENABLED if enabled else audit.CLIENT_DISABLED, user_id=who["actor"],
                     client_id=client_id, ip=who["ip"], user_agent=who["user_agent"],
                     decision="enabled" if enabled else "disabled")
        return True
    return db.clients.count_documents({"_id": client_id}, limit=1) > 0


def delete_client(db, client_id: str, *, actor: str | None = None, ip: str | None = None,
                  user_agent: str | None = None) -> bool:
    """Delete a client with its consents, codes, tokens and back-channel sessions; whether it existed (audited
    then).

    The client's row goes last. First the client is disabled (durably): no client authentication succeeds from then
    on (they read the row fresh) and its stored tokens are dead (``Token.is_revoked``). Then its codes and tokens
    end (``tokens.end_client_grants``: a redemption in flight, which authenticated the client just before, stores
    nothing), then the rest it holds is deleted. A deletion that stops half-way (a crash, a lost database
    connection) leaves a disabled client, still listed, holding nothing usable; running it again finishes it."""
    from .tokens import end_client_grants

    if not durable(db, "clients").update_one(
            {"_id": client_id}, {"$set": {"enabled": False, "updated_at": datetime.now(timezone.utc)}}).matched_count:
        return False
    invalidate(db, client_id)
    end_client_grants(db, client_id)
    db.consents.delete_many({"client_id": client_id})
    db.rp_sessions.delete_many({"client_id": client_id})
    res = db.clients.delete_one({"_id": client_id})
    invalidate(db, client_id)
    if res.deleted_count:
        audit.record(db, audit.CLIENT_DELETED, user_id=actor, client_id=client_id, ip=ip, user_agent=user_agent,
                     decision="deleted")
    return bool(res.deleted_count)


def rotate_secret(db, config, client_id: str, *, actor: str | None = None, ip: str | None = None,
                  user_agent: str | None = None, reason: str = "operator") -> str:
    """Give a confidential client a new secret (returned once); the old one stops working. Audited
    (never the secret)."""
    doc = get_client(db, client_id)
    if doc is None:
        raise ClientError("no such client")
    if doc.get("public"):
        raise ClientError("public clients have no secret")
    secret = new_secret()
    now = datetime.now(timezone.utc)
    db.clients.update_one({"_id": client_id}, {"$set": {**_hashed_fields(config, secret),
                                                        "secret_rotated_at": now, "updated_at": now}})
    invalidate(db, client_id)
    audit.record(db, audit.CLIENT_SECRET_ROTATED, user_id=actor, client_id=client_id, ip=ip,
                 user_agent=user_agent, decision="rotated", details={"reason": reason})
    return secret


def public_view(doc: dict) -> dict:
    """The client document without its secret hash, JSON-friendly."""
    out = {k: v for k, v in doc.items() if k not in ("_id", "secret_hash", "pepper_id")}
    for k, v in list(out.items()):
        if isinstance(v, datetime):
            out[k] = v.isoformat()
    return out


def allowed_scope(doc: dict, scope: str | None, *, for_user: bool = True) -> str:
    """The part of ``scope`` the client ``doc`` may hold as registered now (its ``scope``), in the order given,
    without repeats; for a grant of a user nothing ("") unless ``openid`` remains (every user grant here is an
    OpenID Connect sign-in). The one rule for what a client may hold: what a token is issued with
    (``Client.get_allowed_scope``, which Authlib applies), what a refresh keeps (``tokens.rotate_refresh``) and
    what a token already issued may be used for (``Token.get_scope``). ``offline_access`` only for a client
    registered for the refresh_token grant."""
    registered = set((doc.get("scope") or "").split())
    if for_user and "refresh_token" not in (doc.get("grant_types") or []):
        # offline_access is access while the user is away, which only a refresh token gives (OIDC Core 11): a grant
        # without one is an online grant, ended with its sign-in (``tokens.end_session_grants``)
        registered.discard(OFFLINE_ACCESS)
    kept = [s for s in dict.fromkeys((scope or "").split()) if s in registered]
    return " ".join(kept) if kept and (not for_user or "openid" in kept) else ""


def machine_scope(doc: dict, requested: str | None) -> str | None:
    """The scope a client gets for itself (client_credentials): what it asked for, or without a request
    everything it is registered for, always minus the user-only scopes; None when it asks for anything
    it is not registered for (or a user-only scope)."""
    allowed = [s for s in (doc.get("scope") or "").split() if s not in USER_ONLY_SCOPES]
    if not requested:
        return " ".join(allowed)
    items = list(dict.fromkeys(requested.split()))
    return " ".join(items) if set(items) <= set(allowed) else None


# --- the demo relying party ---------------------------------------------------------------

def _write_private_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(data).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_demo_client(db, config, demo_url: str) -> dict:
    """Idempotently register the demo RP (a client created as ``created_via`` "demo", never another one under its
    name); returns ``{"client_id", "client_secret"}``.

    The secret is shown only once, so the demo's credentials are kept in
    ``<data_dir>/demo-client.json`` (0600) and reused; if that file is gone (or does not match) while
    the client exists, its secret is rotated. Redirect URIs follow ``demo_url``.
    """
    demo_url = demo_url.rstrip("/")
    path = Path(config.data_dir) / "demo-client.json"
    wanted = {"redirect_uris": [f"{demo_url}/callback"], "post_logout_redirect_uris": [f"{demo_url}/"],
              "scope": "openid profile email phone offline_access", "grant_types": list(DEFAULT_GRANT_TYPES),
              "backchannel_logout_uri": f"{demo_url}/backchannel-logout",
              "backchannel_logout_session_required": True, "enabled": True}
    # the demo's own client: one registered by anyone else under its name (RFC 7591 registrants choose names) is
    # never taken for it (its secret rotated, its URIs rewritten)
    doc = db.clients.find_one({"name": DEMO_CLIENT_NAME, "created_via": "demo"}, sort=[("created_at", ASCENDING)])
    if doc is None:
        doc, secret = create_client(db, config, DEMO_CLIENT_NAME, wanted["redirect_uris"],
                                    scope=wanted["scope"], post_logout_redirect_uris=wanted["post_logout_redirect_uris"],
                                    backchannel_logout_uri=wanted["backchannel_logout_uri"],
                                    backchannel_logout_session_required=True,
                                    created_via="demo")
        creds = {"client_id": doc["client_id"], "client_secret": secret}
        _write_private_json(path, creds)
        return creds
    if any(doc.get(k) != v for k, v in wanted.items()):
        update_client(db, doc["_id"], config=config, **wanted)
    try:
        creds = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        creds = None
    if not creds or creds.get("client_id") != doc["_id"] or not verify_secret(config, doc, creds.get("client_secret")):
        creds = {"client_id": doc["_id"], "client_secret": rotate_secret(db, config, doc["_id"], reason="demo")}
        _write_private_json(path, creds)
    return {"client_id": creds["client_id"], "client_secret": creds["client_secret"]}
