"""Signing-key pre-publication: a new key is in the JWKS for at least the JWKS cache lifetime before it
signs; the keys it replaces stay published until their ID tokens have expired; the JWKS says its lifetime
in Cache-Control. Checked across a rotation with two instances sharing the database (each with its own
key cache, one of them re-reading the keys at once): no ID token ever carries a kid absent from a JWKS
fetched after it was issued, nor from the JWKS an RP caches as Cache-Control allows."""
from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone

import requests
from .conftest import RP


def _kid(id_token: str) -> str:
    header = id_token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def _kids(jwks: dict) -> set[str]:
    return {k["kid"] for k in jwks["keys"]}


def test_jwks_cache_control_states_the_lifetime(make_server):
    idp = make_server(jwks_max_age_s=123)
    r = requests.get(f"{idp.url}/jwks.json")
    assert r.headers["Cache-Control"] == "public, max-age=123"


def test_no_id_token_carries_a_kid_missing_from_a_later_jwks(make_server):
    from idp.accounts.users import create_user
    from idp.oauth import keys
    from .conftest import register_client

    from .conftest import PASSWORD, RP_CALLBACK
    one = make_server(jwks_max_age_s=1)
    two = make_server(jwks_max_age_s=1)
    create_user(one.db, "alice", "alice@example.org", PASSWORD)
    doc, secret = register_client(one.db, one.config, "RP", [RP_CALLBACK], skip_consent=True)
    rps = [RP(one, doc["client_id"], secret), RP(two, doc["client_id"], secret)]
    for rp in rps:
        rp.tokens()  # signs in at each instance
    old_kid = _kid(rps[0].tokens()["id_token"])

    [new_kid] = keys.rotate(one.db, one.config, ("RS256",))
    one.app.extensions["oauth_keys"].invalidate()  # instance one sees the rotation at once, two later
    assert new_kid in _kids(requests.get(f"{one.url}/jwks.json").json())

    rp_cache, rp_cache_until = None, 0.0  # an RP that honours Cache-Control
    seen = set()
    deadline = time.monotonic() + keys.prepublish_s(one.config) + 2
    i = 0
    while time.monotonic() < deadline:
        signer, other = rps[i % 2], rps[(i + 1) % 2]
        i += 1
        kid = _kid(signer.tokens()["id_token"])
        seen.add(kid)
        for server in (other.idp, signer.idp):  # a JWKS fetched after issuance, from either instance
            assert kid in _kids(requests.get(f"{server.url}/jwks.json").json()), (kid, server.url)
        if rp_cache is None or time.monotonic() >= rp_cache_until:
            r = requests.get(f"{other.idp.url}/jwks.json")
            max_age = int(re.search(r"max-age=(\d+)", r.headers["Cache-Control"]).group(1))
            rp_cache, rp_cache_until = r.json(), time.monotonic() + max_age
        assert kid in _kids(rp_cache), "kid not in the JWKS the RP may still use from its cache"
    assert seen == {old_kid, new_kid}  # the run spanned the switch
    # the replaced key stays published until its last ID token has expired
    old = one.db.signing_keys.find_one({"_id": old_kid})
    new = one.db.signing_keys.find_one({"_id": new_kid})
    lifetime = timedelta(seconds=one.config.id_token_lifetime_s)
    assert old["retire_after"] >= new["activate_at"] + lifetime
    assert old_kid in _kids(requests.get(f"{two.url}/jwks.json").json())


def test_next_key_does_not_sign_before_its_time(idp, user, rp):
    from idp.oauth import keys
    before = _kid(rp.tokens()["id_token"])
    new = keys.rotate(idp.db, idp.config)
    store = idp.app.extensions["oauth_keys"]
    store.invalidate()
    assert set(new) <= _kids(requests.get(f"{idp.url}/jwks.json").json())
    assert _kid(rp.tokens()["id_token"]) == before  # published, not signing yet
    idp.db.signing_keys.update_many({"_id": {"$in": new}}, {"$set": {
        "activate_at": datetime.now(timezone.utc)}})  # due now
    store.invalidate()
    assert _kid(rp.tokens()["id_token"]) in new
