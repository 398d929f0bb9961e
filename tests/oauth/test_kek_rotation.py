"""Key-encryption key rotation: signing keys sealed under a retired IDP_KEY_ENCRYPTION_KEY keep signing,
`idp keys rekey` re-seals them under the current one (recording which key sealed them, also for documents
from before that was recorded), and ID tokens verify against the JWKS before and after. Real servers over
HTTP sharing one SecantusDB, real AES-GCM, real JWTs checked with joserfc."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from idp.oauth import keys

from .conftest import PASSWORD, RP

KEK_A, KEK_B, KEK_C = "kek-a-" + "1" * 40, "kek-b-" + "2" * 40, "kek-c-" + "3" * 40


def _kid(token: str) -> str:
    import base64
    import json
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def _config(server, **overrides):
    import dataclasses
    return dataclasses.replace(server.config, **overrides)


@pytest.fixture
def first(make_server):
    """An instance with KEK A, a user and a client; its signing keys are sealed under A."""
    from idp.accounts.users import create_user
    server = make_server(key_encryption_key=KEK_A)
    create_user(server.db, "alice", "alice@example.org", PASSWORD)
    server.rp = RP.register(server, server.db, server.config)
    return server


def test_signing_keys_sealed_under_a_retired_kek_keep_signing_and_rekey_moves_them(make_server, first):
    from support.oidc import verified_jwt
    a_id = keys.kek_id(keys._derive(KEK_A))
    b_id = keys.kek_id(keys._derive(KEK_B))
    assert {d["private_enc"]["kek_id"] for d in first.db.signing_keys.find()} == {a_id}
    token_a = first.rp.tokens()["id_token"]

    with pytest.raises(keys.SealedKeyError):  # B alone cannot open them
        doc = first.db.signing_keys.find_one({"alg": "RS256"})
        keys.unseal(_config(first, key_encryption_key=KEK_B), doc["_id"], doc["private_enc"])

    second = make_server(key_encryption_key=KEK_B, key_encryption_keys_retired=KEK_A)
    token_b = RP(second, first.rp.client_id, first.rp.secret).tokens()["id_token"]
    assert verified_jwt(second.url, token_b).claims["iss"] == second.config.issuer
    assert _kid(token_b) == _kid(token_a)  # the same key signs: nothing was lost or replaced

    before = list(first.db.signing_keys.find().sort("_id", 1))
    assert keys.rekey(second.db, second.config, dry_run=True) == {a_id: {"rekeyed": 2}}
    assert list(first.db.signing_keys.find().sort("_id", 1)) == before  # dry run: nothing written

    assert keys.rekey(second.db, second.config) == {a_id: {"rekeyed": 2}}
    assert {d["private_enc"]["kek_id"] for d in first.db.signing_keys.find()} == {b_id}
    assert keys.rekey(second.db, second.config) == {}  # nothing left to do

    third = make_server(key_encryption_key=KEK_B)  # the retired KEK is gone
    token_c = RP(third, first.rp.client_id, first.rp.secret).tokens()["id_token"]
    assert _kid(token_c) == _kid(token_a)
    for token in (token_a, token_b, token_c):  # every ID token verifies against the published JWKS
        assert first.rp.client_id in verified_jwt(third.url, token).claims["aud"]
    doc = first.db.signing_keys.find_one({"alg": "RS256"})
    with pytest.raises(keys.SealedKeyError):  # and the old KEK alone no longer opens them
        keys.unseal(_config(first, key_encryption_key=KEK_A), doc["_id"], doc["private_enc"])


def test_documents_from_before_kek_ids_are_opened_by_trial_and_rekey_records_the_id(make_server, first):
    first.db.signing_keys.update_many({}, {"$unset": {"private_enc.kek_id": ""}})
    second = make_server(key_encryption_key=KEK_B, key_encryption_keys_retired=f"{KEK_C},{KEK_A}")
    token = RP(second, first.rp.client_id, first.rp.secret).tokens()["id_token"]
    from support.oidc import verified_jwt
    assert verified_jwt(second.url, token).claims["sub"]
    a_id = keys.kek_id(keys._derive(KEK_A))
    assert keys.rekey(second.db, second.config) == {a_id: {"rekeyed": 2}}
    assert {d["private_enc"]["kek_id"] for d in first.db.signing_keys.find()} == {keys.current_kek_id(second.config)}


def test_a_change_between_read_and_write_is_not_overwritten(first):
    config_ba = _config(first, key_encryption_key=KEK_B, key_encryption_keys_retired=KEK_A)
    stale = first.db.signing_keys.find_one({"alg": "RS256"})
    assert keys.rekey_key(first.db, config_ba, first.db.signing_keys.find_one({"_id": stale["_id"]}))[1] == "rekeyed"
    winner = first.db.signing_keys.find_one({"_id": stale["_id"]})["private_enc"]
    assert keys.rekey_key(first.db, config_ba, stale)[1] == "changed"
    assert first.db.signing_keys.find_one({"_id": stale["_id"]})["private_enc"] == winner


def test_a_key_sealed_under_an_unknown_kek_fails_closed_and_is_left_alone(first):
    doc = first.db.signing_keys.find_one({"alg": "ES256"})
    jwk = keys.unseal(first.config, doc["_id"], doc["private_enc"])
    first.db.signing_keys.update_one({"_id": doc["_id"]},
                                     {"$set": {"private_enc": keys.seal(_config(first, key_encryption_key=KEK_C),
                                                                        doc["_id"], jwk)}})
    before = first.db.signing_keys.find_one({"_id": doc["_id"]})
    config_ba = _config(first, key_encryption_key=KEK_B, key_encryption_keys_retired=KEK_A)
    with pytest.raises(keys.SealedKeyError) as exc:
        keys.unseal(config_ba, doc["_id"], before["private_enc"])
    assert KEK_C not in str(exc.value) and KEK_A not in str(exc.value)
    counts = keys.rekey(first.db, config_ba)
    c_id = keys.kek_id(keys._derive(KEK_C))
    assert counts[c_id] == {"unreadable": 1}
    assert first.db.signing_keys.find_one({"_id": doc["_id"]}) == before


def test_keys_rekey_command(first, db, mongo_uri, tmp_path):
    from idp.oauth.cli import keys as keys_group
    env = {"MONGODB_URI": mongo_uri, "IDP_DB_NAME": db.name, "IDP_DATA_DIR": str(tmp_path),
           "IDP_KEY_ENCRYPTION_KEY": KEK_B, "IDP_KEY_ENCRYPTION_KEYS_RETIRED": KEK_A}
    a_id = keys.kek_id(keys._derive(KEK_A))
    runner = CliRunner()
    dry = runner.invoke(keys_group, ["rekey", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "would re-seal 2 signing key(s)" in dry.output, dry.output
    assert db.audit_log.count_documents({"event": "oauth.signing_keys_rekeyed"}) == 0
    done = runner.invoke(keys_group, ["rekey"], env=env)
    assert done.exit_code == 0 and f"key id {a_id}: rekeyed 2" in done.output, done.output
    assert KEK_A not in done.output and KEK_B not in done.output
    entry = db.audit_log.find_one({"event": "oauth.signing_keys_rekeyed"})
    assert entry["details"]["rekeyed"] == 2 and entry["details"]["from_key_ids"] == [a_id]
    bad = runner.invoke(keys_group, ["rekey"], env={**env, "IDP_KEY_ENCRYPTION_KEY": KEK_C,
                                                   "IDP_KEY_ENCRYPTION_KEYS_RETIRED": ""})
    assert bad.exit_code == 1 and "not readable" in bad.output


def test_start_up_refuses_a_key_encryption_key_file_that_no_longer_opens_the_signing_keys(db, mongo_uri, tmp_path):
    """A damaged or replaced secrets/key_encryption_key is still text, so it is read; it started the server,
    and every ID token then failed with a 500 and a traceback. `idp serve` now refuses before forking, in one
    line, and writes nothing: the file and the sealed keys stay as they were (no new key is made)."""
    from idp.config import Config
    from idp.serving import prepare_database
    from idp.store import migrate
    migrate.apply(db)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "key_encryption_key").write_text(KEK_A)

    def config():
        return Config(data_dir=tmp_path, mongodb_uri=mongo_uri, db_name=db.name, face_enabled=False).ensure_secrets()

    keys.ensure_keys(db, config())
    assert prepare_database(config()) is None  # the right key starts (an external database: no server to stop)
    sealed = list(db.signing_keys.find().sort("_id", 1))
    (secrets_dir / "key_encryption_key").write_text(KEK_A[:-1] + "2")
    with pytest.raises(SystemExit) as exc:
        prepare_database(config())
    text = str(exc.value.code)
    assert text.startswith("refusing to start: signing key ") and "IDP_KEY_ENCRYPTION_KEY" in text
    assert "\n" not in text and KEK_A[:-1] not in text
    assert (secrets_dir / "key_encryption_key").read_text() == KEK_A[:-1] + "2"
    assert list(db.signing_keys.find().sort("_id", 1)) == sealed
    (secrets_dir / "key_encryption_key").write_text(KEK_A)  # restored from a backup: it starts again
    assert prepare_database(config()) is None


def test_start_up_refuses_a_key_encryption_key_that_does_not_open_the_key_signing_until_its_successor(db, tmp_path):
    """After ``idp keys rotate`` the replaced key is no longer ``active`` but signs until its successor's
    ``activate_at`` (the pre-publication period). The start-up check read only the ``active`` keys: with the
    key-encryption key that sealed the replaced one gone (dropped from the retired list before ``idp keys
    rekey``), the server started and every ID token failed for that period. It refuses now; once the successor
    signs, the replaced key (published, no longer signing) is not needed to start."""
    from datetime import datetime, timezone

    from idp.config import Config
    from idp.store import migrate
    migrate.apply(db)

    def config(kek, retired=""):
        return Config(data_dir=tmp_path, db_name=db.name, face_enabled=False, key_encryption_key=kek,
                      key_encryption_keys_retired=retired)

    keys.ensure_keys(db, config(KEK_A))
    replaced = {d["alg"]: d["_id"] for d in db.signing_keys.find()}
    new = keys.rotate(db, config(KEK_B, KEK_A))  # sealed under B; the A-sealed keys sign for prepublish_s
    keys.check_signing_keys(db, config(KEK_B, KEK_A))
    only_b = config(KEK_B)
    with pytest.raises(keys.SealedKeyError) as exc:
        keys.KeyStore(db, only_b).signing_key("RS256")  # what every ID token would meet
    assert replaced["RS256"] in str(exc.value)
    with pytest.raises(keys.SealedKeyError) as exc:
        keys.check_signing_keys(db, only_b)
    assert any(kid in str(exc.value) for kid in replaced.values()) and KEK_A not in str(exc.value)
    db.signing_keys.update_many({"_id": {"$in": new}}, {"$set": {"activate_at": datetime.now(timezone.utc)}})
    keys.check_signing_keys(db, only_b)  # the successors sign: the replaced keys only verify
    assert keys.KeyStore(db, only_b).signing_key("RS256")[0] in new
