"""Dynamic client registration (RFC 7591) answers wrongly typed or invalid metadata with 400
``invalid_client_metadata`` / ``invalid_redirect_uri`` (RFC 7591 §3.2.2), never a 500, and registers nothing."""
from __future__ import annotations

import json

import pytest
import requests

from oauth.conftest import REGISTRATION_TOKEN as TOKEN
from oauth.conftest import RP_CALLBACK, cheap_password_hashing, make_server  # noqa: F401
OK_URI = RP_CALLBACK


@pytest.fixture
def reg(make_server):
    idp = make_server(registration_access_token=TOKEN)

    def post(body=None, *, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(body)
        r = requests.post(f"{idp.url}/oauth/register", data=data,
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        return r
    post.idp = idp
    return post


def _refused(reg, body, error, **kw):
    r = reg(body, **kw)
    assert r.status_code == 400, (body, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json")
    out = r.json()
    assert out["error"] == error, (body, out)
    desc = out.get("error_description") or ""
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in desc), desc
    assert reg.idp.db.clients.count_documents({}) == 0


@pytest.mark.parametrize("body", [[1], [{"redirect_uris": [OK_URI]}], "x", 5, 1.5, True, None, {}, []])
def test_top_level_not_an_object(reg, body):
    _refused(reg, body, "invalid_client_metadata")


@pytest.mark.parametrize("uris", [
    [123], [None], [["x"]], [{"a": 1}], [True], 123, OK_URI, {"a": OK_URI}, [], None, [""],
    ["not a url"], ["ftp://rp.example/cb"], [OK_URI + "#frag"], [OK_URI + "\x00"], [OK_URI + "\t"],
    ["https://rp.example/c\u00e9"], ["https://[::1/cb"], ["https://user@evil.example/cb"], [OK_URI, 5],
])
def test_bad_redirect_uris(reg, uris):
    _refused(reg, {"redirect_uris": uris, "client_name": "x"}, "invalid_redirect_uri")


@pytest.mark.parametrize("field,value", [
    ("client_name", ["x"]), ("client_name", 5), ("client_name", {"a": "b"}), ("client_name", True),
    ("client_name", "x" * 101), ("client_name", "   "),
    ("scope", 5), ("scope", ["openid"]), ("scope", "openid admin"), ("scope", "openid \u00e9"), ("scope", None),
    ("token_endpoint_auth_method", 5), ("token_endpoint_auth_method", ["none"]),
    ("token_endpoint_auth_method", "private_key_jwt"), ("token_endpoint_auth_method", "\u00e9"),
    ("grant_types", "authorization_code"), ("grant_types", [1]), ("grant_types", ["refresh_token"]),
    ("grant_types", ["password"]), ("grant_types", [None]),
    ("response_types", "code"), ("response_types", [1]), ("response_types", [["code"]]),
    ("response_types", ["token"]),
    ("post_logout_redirect_uris", "https://rp.example/"), ("post_logout_redirect_uris", [1]),
    ("post_logout_redirect_uris", ["nope"]), ("post_logout_redirect_uris", ["https://rp.example/\x00"]),
    ("contacts", "a@example.org"), ("contacts", [1]),
    ("client_uri", 5), ("logo_uri", ["x"]), ("tos_uri", {}), ("policy_uri", 1.5), ("jwks_uri", True),
    ("client_uri", "not a url"),
    ("software_id", 5), ("software_version", []), ("software_statement", 5),
    ("jwks", "x"), ("jwks", [1]), ("jwks", {"keys": "x"}), ("jwks", {"keys": [1]}), ("jwks", {"keys": [{"kty": 5}]}),
    ("id_token_signed_response_alg", 5), ("id_token_signed_response_alg", ["RS256"]),
    ("id_token_signed_response_alg", "none"),
])
def test_wrongly_typed_or_invalid_metadata(reg, field, value):
    _refused(reg, {"redirect_uris": [OK_URI], field: value}, "invalid_client_metadata")


@pytest.mark.parametrize("raw", [b"[" * 100000 + b"]" * 100000, b"{\"a\":" * 40000 + b"1" + b"}" * 40000])
def test_deeply_nested_json(reg, raw):
    r = reg(raw=raw)
    assert r.status_code == 400, r.status_code
    assert reg.idp.db.clients.count_documents({}) == 0


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"", b"{\"redirect_uris\": [\"" + OK_URI.encode() + b"\"]"])
def test_not_json(reg, raw):
    r = reg(raw=raw)
    assert r.status_code == 400, r.status_code
    assert reg.idp.db.clients.count_documents({}) == 0


@pytest.mark.parametrize("raw", [
    b'{"redirect_uris": ["%s"], "client_name": "\\ud800"}' % OK_URI.encode(),
    b'{"redirect_uris": ["%s"], "contacts": ["a\\udfff@example.org"]}' % OK_URI.encode(),
    b'{"redirect_uris": ["%s"], "client_name": "\\ude00\\ud83d"}' % OK_URI.encode(),
    b'{"redirect_uris": ["%s"], "\\ud800": "unknown member"}' % OK_URI.encode()])
def test_lone_surrogate_escape_is_not_json_text(reg, raw):
    """A ``\\uD800``-style escape with no partner decodes to a string no UTF-8 can carry: a client name made of
    one was stored until the database refused to encode it, a 500. Such a body is no JSON text (RFC 8259 8.2):
    400, nothing registered. A real pair (an emoji) still registers."""
    r = reg(raw=raw)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json") and r.json()["error"] == "invalid_request"
    assert reg.idp.db.clients.count_documents({}) == 0
    ok = reg(raw=b'{"redirect_uris": ["%s"], "client_name": "\\ud83d\\ude00"}' % OK_URI.encode())
    assert ok.status_code == 201 and ok.json()["client_name"] == "\U0001f600", ok.text


def test_valid_registration_still_works(reg):
    r = reg({"redirect_uris": [OK_URI], "client_name": "Fine", "scope": "openid email",
             "grant_types": ["authorization_code"], "response_types": ["code"], "contacts": ["a@example.org"],
             "client_uri": "https://rp.example/", "jwks_uri": "https://rp.example/jwks"})
    assert r.status_code == 201, r.text
    assert reg.idp.db.clients.count_documents({}) == 1


def _uris(n: int, length: int | None = None) -> list[str]:
    """``n`` distinct https URIs, each exactly ``length`` characters when given."""
    out = []
    for i in range(n):
        uri = f"https://rp.example/cb/{i}/"
        out.append(uri + "a" * (length - len(uri)) if length else uri)
    return out


@pytest.mark.parametrize("uris", [_uris(21), _uris(5000), [OK_URI] * 21, _uris(1, 2001),
                                  [OK_URI, "https://rp.example/" + "a" * 100_000]])
def test_too_many_or_too_long_redirect_uris_are_refused(reg, uris):
    """A client gets at most 20 redirect URIs of at most 2,000 characters (``clients.MAX_LIST_ITEMS``,
    ``clients.MAX_URI_LENGTH``); 5,000 were accepted before."""
    _refused(reg, {"redirect_uris": uris, "client_name": "x"}, "invalid_redirect_uri")


@pytest.mark.parametrize("field,value", [
    ("post_logout_redirect_uris", _uris(21)), ("post_logout_redirect_uris", _uris(1, 2001)),
    ("contacts", [f"c{i}@example.org" for i in range(21)]), ("contacts", ["a" * 2001 + "@example.org"]),
    ("grant_types", ["authorization_code"] * 21), ("response_types", ["code"] * 21),
])
def test_other_lists_are_capped_too(reg, field, value):
    _refused(reg, {"redirect_uris": [OK_URI], field: value}, "invalid_client_metadata")


def test_the_limits_themselves_are_allowed(reg):
    from idp.oauth.clients import MAX_LIST_ITEMS, MAX_URI_LENGTH
    uris = _uris(MAX_LIST_ITEMS - 1) + _uris(1, MAX_URI_LENGTH)
    r = reg({"redirect_uris": uris, "post_logout_redirect_uris": _uris(MAX_LIST_ITEMS), "client_name": "Many",
             "contacts": [f"c{i}@example.org" for i in range(MAX_LIST_ITEMS)]})
    assert r.status_code == 201, r.text[:300]
    doc = reg.idp.db.clients.find_one({})
    assert doc["redirect_uris"] == uris and len(doc["post_logout_redirect_uris"]) == MAX_LIST_ITEMS
