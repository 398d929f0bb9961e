"""OpenID Connect Dynamic Client Registration 1.0 §2 ``default_max_age``: a client's default for ``max_age``, which
a request's own ``max_age`` overrides (Core 3.1.2.1: a sign-in older than it authenticates again, and the ID
token carries ``auth_time``). It was accepted at registration and then ignored: a client that registered 60
seconds silently got sign-ins hours old. Now it is stored, echoed (RFC 7591 §3.2.1), applied, and a value that is
not a whole number of seconds is refused with ``invalid_client_metadata``, nothing stored. Operators set it with
``idp clients create --default-max-age`` or on the admin page (the clients service's one check)."""
from __future__ import annotations

import pytest
import requests

from .conftest import RP, RP_CALLBACK, age_session, pkce_pair, register_client, register_metadata


def test_registration_2_default_max_age_is_stored_and_echoed(reg_idp):
    r = register_metadata(reg_idp, default_max_age=60)
    assert r.status_code == 201, r.text
    assert r.json()["default_max_age"] == 60
    assert reg_idp.db.clients.find_one({"_id": r.json()["client_id"]})["default_max_age"] == 60
    r = register_metadata(reg_idp, default_max_age=3600.0)  # a JSON number that is a whole number
    assert r.status_code == 201 and r.json()["default_max_age"] == 3600, r.text
    r = register_metadata(reg_idp)
    assert r.status_code == 201 and "default_max_age" not in r.json(), r.text


@pytest.mark.parametrize("value", ["60", -1, 1.5, True, [60], 10 ** 12])
def test_registration_2_default_max_age_not_whole_seconds_is_refused(reg_idp, value):
    r = register_metadata(reg_idp, default_max_age=value)
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_metadata", (value, r.text)
    assert reg_idp.db.clients.count_documents({}) == 0


def test_core_3_1_2_1_default_max_age_applies_when_the_request_has_none(idp, user):
    doc, secret = register_client(idp.db, idp.config, "Aged RP", [RP_CALLBACK], default_max_age=60)
    rp = RP(idp, doc["client_id"], secret)
    first = rp.tokens()
    # within the default: no login page
    ok, _ = rp.sign_in_for_code()
    assert "code" in ok.params
    age_session(idp, 120)
    # older than the default: the password again, and the ID token's auth_time is the new sign-in's
    verifier, challenge = pkce_pair()
    res = rp.follow(rp.authorize_url(code_challenge=challenge, code_challenge_method="S256"))
    assert res.location is None and "/login" in res.response.url
    res = rp.login(res)
    tok = rp.redeem(res.params["code"], verifier).json()
    from joserfc import jwt
    from joserfc.jwk import KeySet
    keys = KeySet.import_key_set(requests.get(f"{idp.url}/jwks.json").json())
    assert jwt.decode(tok["id_token"], keys).claims["auth_time"] > jwt.decode(first["id_token"], keys).claims[
        "auth_time"] - 120
    # the request's own max_age overrides the default, either way
    age_session(idp, 120)
    ok, _ = rp.sign_in_for_code(max_age="3600")
    assert "code" in ok.params
    res = rp.follow(rp.authorize_url(max_age="0"))
    assert "/login" in res.response.url


def test_default_max_age_set_by_operators(idp):
    from idp.oauth.clients import ClientError, update_client
    doc, _ = register_client(idp.db, idp.config, "Operator RP", [RP_CALLBACK])
    assert doc["default_max_age"] is None
    assert update_client(idp.db, doc["client_id"], default_max_age="300")["default_max_age"] == 300  # a form's text
    assert update_client(idp.db, doc["client_id"], default_max_age="")["default_max_age"] is None
    for bad in ("soon", "-5", 2.5, False):
        with pytest.raises(ClientError, match="default_max_age"):
            update_client(idp.db, doc["client_id"], default_max_age=bad)
    assert idp.db.clients.find_one({"_id": doc["client_id"]})["default_max_age"] is None


def test_cli_create_default_max_age(cli_env, db):
    r = cli_env("clients", "create", "--name", "CLI RP", "--redirect-uri", RP_CALLBACK, "--default-max-age", "900")
    assert r.exit_code == 0, r.output
    assert db.clients.find_one({"name": "CLI RP"})["default_max_age"] == 900
    r = cli_env("clients", "create", "--name", "CLI RP 2", "--redirect-uri", RP_CALLBACK, "--default-max-age", "-1")
    assert r.exit_code != 0 and "default_max_age" in r.output
    assert db.clients.find_one({"name": "CLI RP 2"}) is None


@pytest.mark.parametrize("value", ["soon", "<b>1h", 2.5, True, -5, 10 ** 12, [60], {"seconds": 60}])
def test_a_hand_edited_default_max_age_asks_for_a_fresh_sign_in(idp, user, value, caplog):
    """A value written into the clients collection by hand that ``checked_max_age`` refuses: never a 500. It is
    read as 0 (a request without its own ``max_age`` signs in again; its own still overrides), with a warning
    naming the client, not the value, once (not per request); the authorization endpoint leaves the stored value
    as it found it."""
    import logging

    from idp.oauth.clients import invalidate
    doc, secret = register_client(idp.db, idp.config, "Hand-edited RP", [RP_CALLBACK])
    rp = RP(idp, doc["client_id"], secret)
    rp.tokens()
    ok, _ = rp.sign_in_for_code()
    assert "code" in ok.params  # no default: a sign-in of a moment ago serves the request
    idp.db.clients.update_one({"_id": doc["client_id"]}, {"$set": {"default_max_age": value}})
    invalidate(idp.db, doc["client_id"])  # at once, not after the 5 s client cache
    edited = idp.db.clients.find_one({"_id": doc["client_id"]})
    with caplog.at_level(logging.WARNING, logger="idp.oauth"):
        for _ in range(2):
            res = rp.follow(rp.authorize_url())
            assert res.response.status_code == 200 and res.location is None, res.response.status_code
            assert "/login" in res.response.url
        res = rp.login(res)
        assert "code" in res.params
        ok, _ = rp.sign_in_for_code(max_age="3600")
        assert "code" in ok.params and "/login" not in ok.response.url
    warned = [r.getMessage() for r in caplog.records if "default_max_age" in r.getMessage()]
    # The value must not be echoed; the random client id may itself contain its text (say "-5"), so look past it.
    assert warned and all(doc["client_id"] in m and repr(value) not in m.replace(doc["client_id"], "")
                          for m in warned), warned
    assert len(warned) == 1, warned  # several authorization requests applied it: one warning, not one per request
    assert idp.db.clients.find_one({"_id": doc["client_id"]}) == edited


def test_a_hand_edited_whole_double_is_read_as_its_seconds(idp, user, caplog):
    """A number written from the mongo shell is a double: 300.0 is 300 seconds, no warning."""
    import logging

    from idp.oauth.clients import invalidate
    doc, secret = register_client(idp.db, idp.config, "Shell-edited RP", [RP_CALLBACK])
    rp = RP(idp, doc["client_id"], secret)
    rp.tokens()
    idp.db.clients.update_one({"_id": doc["client_id"]}, {"$set": {"default_max_age": 300.0}})
    invalidate(idp.db, doc["client_id"])
    with caplog.at_level(logging.WARNING, logger="idp.oauth"):
        ok, _ = rp.sign_in_for_code()
        assert "code" in ok.params and "/login" not in ok.response.url
        age_session(idp, 600)
        res = rp.follow(rp.authorize_url())
        assert "/login" in res.response.url
    assert not [r for r in caplog.records if "default_max_age" in r.getMessage()]


def test_cli_lists_a_client_with_a_hand_edited_default_max_age(cli_env, db):
    import json
    r = cli_env("clients", "create", "--name", "CLI RP", "--redirect-uri", RP_CALLBACK, "--default-max-age", "900")
    assert r.exit_code == 0, r.output
    db.clients.update_one({"name": "CLI RP"}, {"$set": {"default_max_age": "soon"}})
    assert cli_env("clients", "list").exit_code == 0
    assert json.loads(cli_env("clients", "list", "--json").output)[0]["default_max_age"] == "soon"
