#!/usr/bin/env python3
"""Database commands per password sign-in and per refresh grant, counted with pymongo command monitoring.

    .venv/bin/python benchmarks/oidc_db_commands.py [--signins 3] [--refreshes 3] [--sequence]

Starts a throw-away embedded SecantusDB and the app (``create_app``, face step off) on a local werkzeug
server, creates a user and a confidential + a public client with ``--face optional``, gives consent once
for each, then runs the same complete HTTP sign-in as ``oidc_bench.py`` (GET /authorize -> GET /login ->
POST /login -> GET /authorize -> POST /oauth/token, a fresh cookie jar per sign-in) and refresh grants
with rotation, and prints the commands per sign-in / refresh by command and collection ("j" = journaled
write). Handshake and session-management commands of the driver are not counted.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymongo.monitoring as monitoring

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oidc_bench as ob  # noqa: E402

IGNORED = {"hello", "ismaster", "isMaster", "endSessions", "ping", "saslStart", "saslContinue", "buildinfo",
           "buildInfo"}
WRITES = {"insert", "update", "delete", "findAndModify"}
OFFLINE_SCOPE = ob.SCOPE + " offline_access"  # the public client refreshes


class Recorder(monitoring.CommandListener):
    def __init__(self):
        self.events: list[str] = []

    def started(self, event):
        if event.command_name in IGNORED:
            return
        name = f"{event.command_name} {event.command.get(event.command_name)}"
        if (event.command.get("writeConcern") or {}).get("j"):
            name += " j"
        self.events.append(name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def report(title: str, events: list[str], n: int, sequence: bool) -> None:
    counts = collections.Counter(events)
    writes = sum(v for k, v in counts.items() if k.split()[0] in WRITES)
    print(f"{title}: {len(events) / n:.2f} commands, {writes / n:.2f} of them writes (mean of {n})")
    for name, v in counts.most_common():
        print(f"  {v / n:5.2f}  {name}")
    if sequence:
        print("  in order, the first one:")
        for name in events[: len(events) // n]:
            print(f"    {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signins", type=int, default=3)
    ap.add_argument("--refreshes", type=int, default=3)
    ap.add_argument("--sequence", action="store_true", help="also list the commands of one sign-in in order")
    args = ap.parse_args()

    recorder = Recorder()
    monitoring.register(recorder)  # before any client exists

    import requests
    from werkzeug.serving import make_server

    from idp import create_app
    from idp.accounts.users import create_user
    from idp.config import Config
    from idp.oauth.clients import create_client
    from idp.store import EmbeddedMongo

    tmp = Path(tempfile.mkdtemp(prefix="oidc-dbcmd-"))
    server = EmbeddedMongo(tmp / "db").start()
    httpd = None
    try:
        config = Config(data_dir=tmp, mongodb_uri=server.uri, db_name="dbcmd", face_enabled=False,
                        log_level="WARNING", extra={"auto_migrate": True})
        app = create_app(config)
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        config.issuer = f"http://127.0.0.1:{httpd.server_port}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        db = app.extensions["db"]
        create_user(db, ob.USER, f"{ob.USER}@example.test", ob.PASSWORD)
        conf, secret = create_client(db, config, "bench-conf", [ob.REDIRECT_URI], scope=ob.SCOPE,
                                     face_policy="optional")
        pub, _ = create_client(db, config, "bench-pub", [ob.REDIRECT_URI], scope=OFFLINE_SCOPE,
                               face_policy="optional", public=True)
        meta = ob.discovery(config.issuer)
        ob.sign_in(meta, conf["client_id"], secret, ob.USER, ob.PASSWORD)  # consent, remembered
        # a refresh token is issued only with offline_access (OIDC Core 11)
        tok = ob.sign_in(meta, pub["client_id"], None, ob.USER, ob.PASSWORD, scope=OFFLINE_SCOPE)
        time.sleep(0.2)

        recorder.events.clear()
        for _ in range(args.signins):
            ob.sign_in(meta, conf["client_id"], secret, ob.USER, ob.PASSWORD, http=requests.Session())
        time.sleep(0.2)
        signin = list(recorder.events)

        recorder.events.clear()
        refresh = tok["refresh_token"]
        for _ in range(args.refreshes):
            r = requests.post(meta["token_endpoint"], timeout=30, data={
                "grant_type": "refresh_token", "refresh_token": refresh, "client_id": pub["client_id"]})
            r.raise_for_status()
            refresh = r.json()["refresh_token"]
        time.sleep(0.2)
        refreshes = list(recorder.events)
    finally:
        if httpd is not None:
            httpd.shutdown()
        server.stop()

    report("password sign-in (full flow)", signin, args.signins, args.sequence)
    report("refresh grant (rotation)", refreshes, args.refreshes, False)


if __name__ == "__main__":
    main()
