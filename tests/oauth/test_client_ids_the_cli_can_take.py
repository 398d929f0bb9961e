"""Every client id the IdP issues can be given to ``idp clients ...`` as an argument: one function draws them
(``clients.new_client_id``, never a leading '-', which click reads as an option), for the CLI, the admin pages and
dynamic registration (RFC 7591) alike. An id issued before that (about 1 in 64 of the registered ones) is taken
after ``--``."""
from __future__ import annotations

import itertools
import secrets

import pytest

from idp.oauth.server import Registration


def test_registration_draws_again_when_a_client_id_would_start_with_a_dash(monkeypatch):
    draws = itertools.chain(["-Xq3xJ1m8Zl0aQ2wR7tY9uIo"], itertools.repeat("Xq3xJ1m8Zl0aQ2wR7tY9uIo"))
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=None: next(draws))
    assert Registration.generate_client_id(None, None) == "Xq3xJ1m8Zl0aQ2wR7tY9uIo"


def test_registration_issues_no_client_id_starting_with_a_dash():
    assert not [i for i in (Registration.generate_client_id(None, None) for _ in range(2000)) if i.startswith("-")]


@pytest.mark.parametrize("command", [("disable",), ("face-policy", "optional"), ("delete",)])
def test_an_older_client_id_starting_with_a_dash_is_taken_after_double_dash(cli_env, db, tmp_path, command):
    from idp.config import Config
    from idp.oauth.clients import create_client
    config = Config(data_dir=tmp_path, face_enabled=False)
    config.ensure_secrets()
    doc, _ = create_client(db, config, "Registered", ["https://rp.example/cb"], client_id="-Xq3xJ1m8Zl0aQ2wR7tY9uIo",
                           created_via="registration")
    name, *rest = command
    r = cli_env("clients", name, "--", doc["_id"], *rest)
    assert r.exit_code == 0, r.output
    after = db.clients.find_one({"_id": doc["_id"]})
    assert {"disable": lambda: after["enabled"] is False, "face-policy": lambda: after["face_policy"] == "optional",
            "delete": lambda: after is None}[name]()
