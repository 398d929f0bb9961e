"""Shared fixtures: a real SecantusDB server, the shared face data, app factories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: one TensorFlow thread each (servers they start inherit it), so
    # the workers do not spin waiting on each other's threads. Set before TensorFlow is first imported.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
FACES_DIR = Path(os.environ.get("DEEPAUTH_FACES_DIR", ROOT.parent / "shared" / "data" / "faces"))


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES_DIR.is_dir():
        pytest.skip(f"face data not found at {FACES_DIR} (set DEEPAUTH_FACES_DIR or place ../shared beside the repo)")
    return FACES_DIR


@pytest.fixture(scope="session")
def face_data_dir(tmp_path_factory) -> Path:
    """One data directory for every face engine and face-enabled app of the session, so the face models (shared
    per data directory) load once per run. Its ``models`` folder is the cached conversion of the FaceNet
    weights (``support.fixtures.model_cache``): converted once per machine, checked by sha256 on each load;
    tests/face/test_models.py compares the loaded model with the frozen graph, and
    tests/ops/test_quick_start.py converts from scratch into a fresh directory."""
    from support.fixtures import link_model_cache
    return link_model_cache(tmp_path_factory.mktemp("face-data"), tmp_path_factory)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """One real SecantusDB daemon for the whole test session."""
    from idp.store import EmbeddedMongo

    server = EmbeddedMongo(tmp_path_factory.mktemp("secantus")).start()
    yield server
    from idp.mail import stop_senders
    stop_senders()  # the apps' mail senders would log the server's end as a database outage
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


class SMTPCapture:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, optionally requiring AUTH."""

    def __init__(self, user: str | None = None, password: str | None = None):
        import email
        import threading

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list = []
        self.logins: list = []
        self._cond = threading.Condition()
        capture = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = email.message_from_bytes(envelope.original_content or envelope.content)
                with capture._cond:
                    capture.messages.append(msg)
                    capture._cond.notify_all()
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode(), auth_data.password.decode()) == (user, password)
            if ok:
                capture.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        kwargs = {}
        if user:
            kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
        import socket
        with socket.socket() as probe:  # aiosmtpd's start-up check needs the real port up front
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        from urllib.parse import quote
        cred = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        self.url = f"smtp://{cred}127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 15.0) -> list:
        import time
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} mail(s), got {len(self.messages)}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_matching(self, match, count: int = 1, timeout: float = 15.0) -> list:
        """The received mails ``match`` accepts, once there are at least ``count``: for a test whose other mails
        (an enrollment or new-browser notice) arrive at their own pace, so that counting every mail races them."""
        import time
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := [m for m in self.messages if match(m)]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} matching mail(s), got {len(found)}: "
                                         f"{[m['Subject'] for m in self.messages]}")
                self._cond.wait(left)
            return found

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server for the test; ``.url`` for IDP_SMTP_URL, ``.wait_for(n)`` the received mails."""
    server = SMTPCapture()
    yield server
    server.stop()


def mail_link(message, kind: str) -> str:
    """The path of the ``/<kind>/<token>`` link in a received mail (``kind``: verify-email or reset)."""
    import re
    body = message.get_payload(decode=True).decode()
    m = re.search(r"https?://[^/\s]+(/" + kind + r"/[A-Za-z0-9_-]+)", body)
    assert m, f"no {kind} link in the mail: {body!r}"
    return m.group(1)



# The longest units of work start first, so that with several workers none of them is left running alone at the
# end (pytest-xdist hands out the units in collection order): the browser tests, the endpoint fuzzer, the
# tests that start servers as subprocesses. A stable sort: the order inside each stays as collected.
LONG_FIRST = ("tests/browser/", "tests/security/test_fuzz_endpoints.py", "tests/ops/")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: next((i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)),
                                     len(LONG_FIRST)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (``make test``) with all browser tests on one worker: one Chromium and one face
    IdP for them, and no two real-time face steps competing for the 2 cores. Every other module is a unit."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/browser" if path.startswith("tests/browser/") else path

    return BrowserTestsTogether(config, log)
