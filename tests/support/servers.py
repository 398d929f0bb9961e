"""Apps over real HTTP on 127.0.0.1: werkzeug's threaded server in a daemon thread, on a port the OS picks."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable


def free_port() -> int:
    """A port that was free a moment ago (for servers started as subprocesses, which must be told their port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process_group(proc: subprocess.Popen, wait_s: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``) and every process of its group: ``sig`` to
    the group, up to ``wait_s`` for ``proc`` to end, then SIGKILL to whatever of the group is left.
    Terminating a gunicorn master alone (and killing it when its graceful shutdown took too long) left its
    worker running after the test run."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(wait_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(wait_s)


class LiveServer:
    """A WSGI app over HTTP on ``127.0.0.1:<port>``; ``url`` is its base URL.

    Give ``app``, or ``build(url) -> app`` when the app must know its own URL (an issuer, a redirect URI):
    the socket is bound first, so there is no window in which the port could be taken."""

    def __init__(self, app=None, *, build: Callable[[str], object] | None = None):
        from werkzeug.serving import make_server

        if (app is None) == (build is None):
            raise TypeError("give exactly one of app and build")
        self.app = app
        self.httpd = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        if build is not None:
            self.app = build(self.url)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _dispatch(self, environ, start_response):
        return self.app(environ, start_response)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(5)
        self.httpd.server_close()


class IdPServer(LiveServer):
    """The identity provider (an app from ``idp.create_app``) over HTTP, its issuer set to the served URL."""

    def __init__(self, app):
        super().__init__(app)
        app.config["IDP"].issuer = self.url

    @property
    def config(self):
        return self.app.config["IDP"]

    @property
    def db(self):
        return self.app.extensions["db"]
