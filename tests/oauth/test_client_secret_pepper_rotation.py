"""Client-secret pepper rotation: a secret hashed under a retired IDP_CLIENT_SECRET_PEPPER keeps
authenticating, is re-hashed under the current pepper at its next use (so the retired pepper can then be
dropped without any client getting a new secret), and `idp clients list` tells how many are left. Real
servers over HTTP sharing one SecantusDB, real token requests."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from click.testing import CliRunner

from idp.keyring import pepper_id
from idp.oauth import clients

from .conftest import PASSWORD, RP

PEPPER_A, PEPPER_B = "pepper-a-" + "1" * 40, "pepper-b-" + "2" * 40


def _hmac(pepper: str, secret: str) -> str:
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def first(make_server):
    """An instance with pepper A, a user and a confidential client whose secret is hashed under A."""
    from idp.accounts.users import create_user
    server = make_server(client_secret_pepper=PEPPER_A)
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    server.rp = RP.register(server, server.db, server.config)
    return server


def _token_status(server, rp) -> int:
    """The token endpoint's status for a bogus code: 400 (invalid_grant) once the client authenticated, 401 if not."""
    return rp.token(grant_type="authorization_code", code="not-a-code", redirect_uri=rp.redirect_uri).status_code


def test_a_new_pepper_alone_refuses_the_old_secrets(make_server, first):
    doc = first.db.clients.find_one({"_id": first.rp.client_id})
    assert doc["secret_hash"] == _hmac(PEPPER_A, first.rp.secret) and doc["pepper_id"] == pepper_id(PEPPER_A)
    second = make_server(client_secret_pepper=PEPPER_B)
    assert _token_status(second, RP(second, first.rp.client_id, first.rp.secret)) == 401  # invalid_client


def test_a_secret_under_a_retired_pepper_authenticates_and_is_rehashed_at_its_next_use(make_server, first):
    second = make_server(client_secret_pepper=PEPPER_B, client_secret_peppers_retired=PEPPER_A)
    assert clients.secrets_under_other_peppers(second.db, second.config) == 1
    rp = RP(second, first.rp.client_id, first.rp.secret)
    assert "id_token" in rp.tokens()
    doc = second.db.clients.find_one({"_id": first.rp.client_id})
    assert doc["secret_hash"] == _hmac(PEPPER_B, first.rp.secret) and doc["pepper_id"] == pepper_id(PEPPER_B)
    assert clients.secrets_under_other_peppers(second.db, second.config) == 0

    third = make_server(client_secret_pepper=PEPPER_B)  # the retired pepper is dropped: nothing breaks
    assert "id_token" in RP(third, first.rp.client_id, first.rp.secret).tokens()
    assert _token_status(third, RP(third, first.rp.client_id, "wrong-" + first.rp.secret)) == 401


def test_a_wrong_secret_is_refused_under_every_pepper_and_changes_nothing(make_server, first):
    second = make_server(client_secret_pepper=PEPPER_B, client_secret_peppers_retired=PEPPER_A)
    before = second.db.clients.find_one({"_id": first.rp.client_id})
    assert _token_status(second, RP(second, first.rp.client_id, "wrong-" + first.rp.secret)) == 401
    assert second.db.clients.find_one({"_id": first.rp.client_id}) == before


def test_a_secret_rotated_between_read_and_rehash_is_not_overwritten(first):
    config_ba = dataclasses.replace(first.config, client_secret_pepper=PEPPER_B,
                                    client_secret_peppers_retired=PEPPER_A)
    stale = first.db.clients.find_one({"_id": first.rp.client_id})
    new_secret = clients.rotate_secret(first.db, config_ba, first.rp.client_id)
    assert clients.verify_secret(config_ba, stale, first.rp.secret, db=first.db)  # the old doc, read before
    doc = first.db.clients.find_one({"_id": first.rp.client_id})
    assert doc["secret_hash"] == _hmac(PEPPER_B, new_secret)  # the rotation stands
    assert not clients.verify_secret(config_ba, doc, first.rp.secret, db=first.db)


def test_hashes_from_before_pepper_ids_are_marked_at_their_next_use(first):
    first.db.clients.update_one({"_id": first.rp.client_id}, {"$unset": {"pepper_id": ""}})
    clients.invalidate(first.db, first.rp.client_id)
    assert clients.secrets_under_other_peppers(first.db, first.config) == 1
    assert "id_token" in first.rp.tokens()
    assert first.db.clients.find_one({"_id": first.rp.client_id})["pepper_id"] == pepper_id(PEPPER_A)
    assert clients.secrets_under_other_peppers(first.db, first.config) == 0


def test_clients_list_counts_secrets_left_under_other_peppers(first, db, mongo_uri, tmp_path):
    from idp.cli import cli
    env = {"MONGODB_URI": mongo_uri, "IDP_DB_NAME": db.name, "IDP_DATA_DIR": str(tmp_path),
           "IDP_CLIENT_SECRET_PEPPER": PEPPER_B, "IDP_CLIENT_SECRET_PEPPERS_RETIRED": PEPPER_A}
    out = CliRunner().invoke(cli, ["clients", "list"], env=env, catch_exceptions=False)
    assert out.exit_code == 0 and first.rp.client_id in out.output
    assert "1 client secret(s) not yet hashed under the current IDP_CLIENT_SECRET_PEPPER" in out.output
    assert PEPPER_A not in out.output and PEPPER_B not in out.output
    same = CliRunner().invoke(cli, ["clients", "list"], env={**env, "IDP_CLIENT_SECRET_PEPPER": PEPPER_A,
                                                             "IDP_CLIENT_SECRET_PEPPERS_RETIRED": ""})
    assert "not yet hashed" not in same.output


def test_an_empty_retired_pepper_entry_stops_start_up():
    from idp.config import Config
    with pytest.raises(SystemExit) as exc:
        Config.from_env({"IDP_CLIENT_SECRET_PEPPERS_RETIRED": f"{PEPPER_A},,"})
    assert "IDP_CLIENT_SECRET_PEPPERS_RETIRED" in str(exc.value) and PEPPER_A not in str(exc.value)
