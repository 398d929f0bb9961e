"""Running the IdP: gunicorn (threads) for ``idp serve``, plus the demo RP for ``idp demo``.

The master process starts the embedded database (when ``MONGODB_URI`` is
unset) and applies migrations before forking, so every worker shares one
database server. With face sign-in on, the master also makes sure the FaceNet weights
are converted and cached (in a child process, before the socket is bound), so workers
only load the cached file; each worker builds its own app and warms up the face models
once.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

from idp.assets import ROOT
from idp.config import Config
from idp.parsing import MAX_REQUEST_LINE

log = logging.getLogger("idp.serving")


def prepare_database(config: Config):
    """Before forking workers: start the embedded DB if needed, check migrations (see
    ``idp.store.runtime.check_migrations``), that the key-encryption key opens the signing keys and that
    the template key fits the stored face templates (one line and exit otherwise). Returns the embedded
    server to stop, or None."""
    from idp.store import connect, migrate
    from idp.store.runtime import check_migrations, ensure_server

    from idp.faceweb.integrity import TemplateKeyError, check_liveness_models, check_template_key, model_errors
    from idp.oauth.keys import SealedKeyError, check_signing_keys

    server, embedded = ensure_server(config)
    db = connect(config.mongodb_uri, config.db_name)
    try:
        check_migrations(db, embedded)
        check_signing_keys(db, config)
        if config.face_enabled:
            from idp.face import TemplateCipher
            check_template_key(db, TemplateCipher.from_config(config))
            check_liveness_models(config)
    except (migrate.PendingMigrations, TemplateKeyError, SealedKeyError, *model_errors()) as e:
        if server is not None:
            server.stop()
        raise SystemExit(f"refusing to start: {e}") from None
    finally:
        db.client.close()
    return server


def gunicorn_app(config: Config, options: dict):
    from gunicorn.app.base import BaseApplication

    class IdpApplication(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from idp import create_app
            from idp.native_notices import import_tensorflow_quietly
            from idp.ops import run_warmups
            if config.face_enabled:
                import_tensorflow_quietly()
            app = create_app(config)
            run_warmups(app)
            return app

    return IdpApplication()


def check_bind_address(config: Config, host: str) -> None:
    """An http issuer (development: ``Config`` allows it on a loopback address only) is served on a loopback address
    only. Bound to 0.0.0.0, :: or any other address, its pages (sign-in, registration, account) answered the
    network in clear text, passwords and session cookies (not ``Secure``) included, whatever the issuer said.
    One ``configuration error`` line otherwise."""
    from idp.parsing import is_loopback_host
    if not config.secure_cookies and not is_loopback_host(host):
        raise SystemExit(f"configuration error: --host {host or '(all addresses)'} with the http issuer "
                         f"{config.issuer} would serve passwords and session cookies in clear text to the network; "
                         "bind a loopback address (127.0.0.1), or set IDP_ISSUER to the https URL of the TLS proxy "
                         "in front (README, Production)")


def serve(config: Config, host: str, port: int, workers: int = 2, threads: int = 4) -> None:
    from idp.metrics import prepare_multiprocess_dir, worker_exit
    from idp.web.logs import configure_logging

    check_bind_address(config, host)
    configure_logging(config.log_format, config.log_level)
    metrics_dir = prepare_multiprocess_dir(config.data_dir)  # before anything counts (e.g. an audit event)
    server = None
    try:
        server = prepare_database(config)
        if config.face_enabled:
            from idp.face.model import ensure_cached_weights
            ensure_cached_weights(config.data_dir)  # before the socket is bound: no request waits on it
        gunicorn_app(config, {
            "child_exit": lambda _arbiter, worker: worker_exit(worker.pid),
            "bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
            "timeout": 120, "graceful_timeout": 10, "keepalive": 5, "accesslog": None,
            "limit_request_line": MAX_REQUEST_LINE, "limit_request_fields": 100, "control_socket_disable": True,
            # forwarding headers are handled by the app (IDP_TRUSTED_PROXIES, idp.web.proxy) and nowhere else
            "forwarded_allow_ips": "",
        }).run()
    finally:
        import shutil
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if server is not None:
            server.stop()


def _demo_rp_env(config: Config, client_port: int, demo_url: str) -> dict:
    """Register (or find) the demo client and return the demo RP's environment."""
    from idp.oauth.clients import ensure_demo_client
    from idp.store import connect

    db = connect(config.mongodb_uri, config.db_name)
    try:
        creds = ensure_demo_client(db, config, demo_url)
    finally:
        db.client.close()
    return dict(os.environ, DEMO_ISSUER=config.issuer, DEMO_CLIENT_ID=creds["client_id"],
                DEMO_CLIENT_SECRET=creds.get("client_secret") or "", DEMO_PORT=str(client_port),
                DEMO_BASE_URL=demo_url)


def announce_when_ready(urls: list[str], banner: str, stop: threading.Event, interval: float = 0.5) -> bool:
    """Print ``banner`` once every URL answers 200 (polled every ``interval`` s until ``stop`` is set),
    so the demo's "open this" never points at a server that is still loading. True if printed."""
    import urllib.error
    import urllib.request

    def answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    pending = list(urls)
    while not stop.is_set():
        pending = [url for url in pending if not answers(url)]
        if not pending:
            print(banner, flush=True)
            return True
        stop.wait(interval)
    return False


def run_demo(config: Config, port: int = 5000, client_port: int = 5001, rp_only: bool = False) -> None:
    """The README's one command: IdP on :port and the demo RP on :client_port (embedded DB unless
    MONGODB_URI is set). ``rp_only`` runs just the demo RP against an IdP that runs elsewhere."""
    from idp.web.logs import configure_logging

    if Config.ENV["log_format"] not in os.environ:  # a person at a terminal, unless told otherwise
        config.log_format = "text"
    configure_logging(config.log_format, config.log_level)
    if config.issuer == Config.issuer:  # IDP_ISSUER unset: the issuer follows --port
        config.issuer = f"http://127.0.0.1:{port}"
    demo_url = config.demo_client_url or f"http://127.0.0.1:{client_port}"
    if not rp_only:
        from idp.metrics import prepare_multiprocess_dir
        prepare_multiprocess_dir(config.data_dir)  # before registering the demo client is audited
    server = prepare_database(config)
    try:
        env = _demo_rp_env(config, client_port, demo_url)
        command = [sys.executable, "-m", "clients.demo"]
        if rp_only:
            stop = threading.Event()
            threading.Thread(target=announce_when_ready, daemon=True, name="demo-banner", args=(
                [f"http://127.0.0.1:{client_port}/"],
                f"\n  Demo relying party: {demo_url}  <- open this\n"
                f"  Identity provider: {config.issuer} (not started here: --rp-only)\n", stop)).start()
            try:
                subprocess.run(command, cwd=str(ROOT), env=env, check=False)
            finally:
                stop.set()
            return
        rp = subprocess.Popen(command, cwd=str(ROOT), env=env)
        from idp.mail.transport import from_config as mail_transport
        banner = (f"\n  Identity provider: {config.issuer}\n  Demo relying party: {demo_url}  <- open this\n"
                  f"  Emails (verification, password reset, notices): {mail_transport(config).describe()}\n")
        stop = threading.Event()
        threading.Thread(target=announce_when_ready, daemon=True, name="demo-banner",
                         args=([f"http://127.0.0.1:{port}/readyz", f"http://127.0.0.1:{client_port}/"],
                               banner, stop)).start()
        try:
            serve(config, host="127.0.0.1", port=port, workers=config.workers or 1,
                  threads=config.threads)
        finally:
            stop.set()
            rp.terminate()
            try:
                rp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                rp.kill()
    finally:
        if server is not None:
            server.stop()
