"""``idp.store.connect``: options the operator writes in IDP_MONGODB_URI are the ones used."""
from __future__ import annotations

from idp.store import connect


def test_options_in_the_uri_win_over_the_defaults():
    db = connect("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500&appName=ops-tool", "x")
    try:
        assert db.client.options.server_selection_timeout == 0.5
        assert db.client.options.pool_options.metadata["application"] == {"name": "ops-tool"}
    finally:
        db.client.close()


def test_defaults_apply_when_the_uri_says_nothing():
    db = connect("mongodb://127.0.0.1:1/", "x")
    try:
        assert db.client.options.server_selection_timeout == 10
        assert db.client.options.pool_options.metadata["application"] == {"name": "deepauth"}
        assert db.client.codec_options.tz_aware is True
    finally:
        db.client.close()
