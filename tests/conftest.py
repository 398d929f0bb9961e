"""Shared fixtures: a real SecantusDB server, the shared face data, app factories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES_DIR.is_dir():
        pytest.skip(f"face data not found at {FACES_DIR} (set DEEPAUTH_FACES_DIR or place ../shared beside the repo)")
    return FACES_DIR


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """One real SecantusDB daemon for the whole test session."""
    from idp.store import EmbeddedMongo

    server = EmbeddedMongo(tmp_path_factory.mktemp("secantus")).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(mongo_server) -> str:
    return mongo_server.uri


@pytest.fixture
def db(mongo_server, request):
    """A fresh database per test, on the shared server."""
    from idp.store import connect

    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50] + "_" + os.urandom(3).hex()
    database = connect(mongo_server.uri, name)
    yield database
    database.client.drop_database(name)
    database.client.close()
