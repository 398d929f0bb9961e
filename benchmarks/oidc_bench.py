#!/usr/bin/env python3
"""OIDC provider benchmark: password sign-ins/s and refresh-token grants/s of ``idp serve``.

    .venv/bin/python benchmarks/oidc_bench.py run [--threads 4 8] [--duration 15] [--conns 8]
                                                  [--signin-concurrency 4] [--scenarios signin,refresh]
                                                  [--no-face] [--results FILE]
    .venv/bin/python benchmarks/oidc_bench.py mint N OUT CLIENT BASE     # MINT_CMD for the peer harness

What ``run`` does, for every gunicorn setting given by ``--workers``/``--threads``:

1. A fresh temporary data directory (embedded SecantusDB, generated secrets and signing key). The CLI
   creates a test user (no face template) and two clients with ``--face optional`` so that the hosted
   sign-in is password-only: ``bench-conf`` (confidential, client_secret_basic) and ``bench-pub`` (public),
   both with redirect URI ``http://127.0.0.1:9/cb`` (never contacted: the Location header is read).
2. ``idp serve`` (gunicorn gthread, the production server) is started on 127.0.0.1 with the setting.
   The face models load as in production unless ``--no-face`` (IDP_FACE_ENABLED=0) is given.
3. **signin**: a Python load generator (``--signin-concurrency`` threads, closed loop, each flow with a
   fresh cookie jar) runs the complete password sign-in over HTTP for ``--duration`` seconds:
   GET /authorize (PKCE S256, state, nonce) -> 302 /login -> GET /login (CSRF token) -> POST /login
   (argon2id verify) -> 302 /authorize -> [consent page, first time only] -> 302 redirect_uri?code ->
   POST /oauth/token (code + code_verifier, client_secret_basic). One sign-in = all of that; its latency
   is the whole flow. Server CPU is the utime+stime of the server process tree (gunicorn master,
   workers and the embedded SecantusDB child) from /proc, before and after.
4. **refresh-split** (optional): the same refresh load (the harness's refresh.lua under wrk, 8 families minted
   by the real flow) with per-process CPU: gunicorn workers vs the embedded database.
5. **refresh** (and optionally **introspect**, **discovery**): the shared peer harness
   (``../shared/bench/peers/run.sh external SCENARIO``, wrk with one thread per connection, one
   independent rotating token family per connection). Token families are minted by ``mint`` below,
   which is the same real HTTP flow (no back door). The harness measures server CPU the same way.

Results: one JSON record per measurement appended to ``--results`` (default
benchmarks/results/oidc-<date>.jsonl) and a summary printed at the end.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.html_forms import forms  # noqa: E402  (the tests' form handling: one copy)

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("PEERS_HARNESS", ROOT.parent / "shared" / "bench" / "peers"))
TICK = os.sysconf("SC_CLK_TCK")
REDIRECT_URI = "http://127.0.0.1:9/cb"
SCOPE = os.environ.get("BENCH_SCOPE", "openid profile")
MODEL_CACHE = Path(os.environ.get("BENCH_MODEL_CACHE", Path(tempfile.gettempdir()) / "oidc-bench-models"))
USER = "benchuser"
PASSWORD = "correct horse battery staple 42"


# --------------------------------------------------------------------------- the real sign-in flow
_ALLOW = re.compile(r"allow|approve|accept|consent|yes|continue|authori[sz]e|grant", re.I)
_DENY = re.compile(r"deny|cancel|reject|decline|no\b", re.I)


def _fill(form: dict, username: str, password: str) -> tuple[dict, str] | None:
    """Form data for the login form (has a password input) or the consent form (an allow button)."""
    data = {i["name"]: i.get("value", "") for i in form["inputs"]
            if i.get("name") and i["type"] in ("hidden", "text", "email", "password")}
    if any(i["type"] == "password" for i in form["inputs"]):
        for i in form["inputs"]:
            name = i.get("name", "")
            if i["type"] == "password" and "confirm" not in name:
                data[name] = password
            elif i["type"] in ("text", "email") and re.search(r"user|login|ident|email|name", name, re.I):
                data[name] = username
        kind = "login"
    else:
        allow = [b for b in form["buttons"] if _ALLOW.search(b.get("value", "") + " " + b.get("name", ""))
                 and not _DENY.search(b.get("value", ""))]
        if not allow:
            return None
        if allow[0].get("name"):
            data[allow[0]["name"]] = allow[0].get("value", "")
        kind = "consent"
    return data, kind


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def sign_in(meta: dict, client_id: str, client_secret: str | None, username: str, password: str,
            scope: str = SCOPE, http: requests.Session | None = None) -> dict:
    """The complete password sign-in over HTTP; returns the token endpoint's JSON response."""
    s = http or requests.Session()
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = meta["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "scope": scope,
        "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})
    r = s.get(url, allow_redirects=False, timeout=30)
    steps = []
    for _ in range(12):
        if r.status_code in (301, 302, 303, 307):
            loc = urllib.parse.urljoin(r.url, r.headers["Location"])
            if loc.startswith(REDIRECT_URI):
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
                if "error" in q:
                    raise RuntimeError(f"authorization error: {q}")
                if q.get("state") != state:
                    raise RuntimeError("state mismatch")
                return _exchange(s, meta, client_id, client_secret, q["code"], verifier)
            r = s.get(loc, allow_redirects=False, timeout=30)
            continue
        if r.status_code != 200 or "html" not in r.headers.get("Content-Type", ""):
            raise RuntimeError(f"unexpected {r.status_code} at {r.url} after {steps}: {r.text[:300]}")
        for form in forms(r.text):
            filled = _fill(form, username, password)
            if filled:
                data, kind = filled
                steps.append(kind)
                action = urllib.parse.urljoin(r.url, form["action"] or r.url)
                r = s.post(action, data=data, allow_redirects=False, timeout=30)
                break
        else:
            raise RuntimeError(f"no login or consent form at {r.url} after {steps}: {r.text[:300]}")
    raise RuntimeError(f"too many steps: {steps}")


def _exchange(s, meta, client_id, client_secret, code, verifier) -> dict:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    auth = None
    if client_secret:
        auth = (urllib.parse.quote(client_id, safe=""), urllib.parse.quote(client_secret, safe=""))
    else:
        data["client_id"] = client_id
    r = s.post(meta["token_endpoint"], data=data, auth=auth, timeout=30,
               headers={"Accept": "application/json"})
    if r.status_code != 200:
        raise RuntimeError(f"token endpoint {r.status_code}: {r.text[:300]}")
    return r.json()


def discovery(base: str) -> dict:
    r = requests.get(base.rstrip("/") + "/.well-known/openid-configuration", timeout=10)
    r.raise_for_status()
    return r.json()


# --------------------------------------------------------------------------- process / CPU accounting
def proc_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_seconds(root: int) -> float:
    """utime+stime (all threads) of root and all its live descendants (as the peer harness does)."""
    return pids_cpu_seconds(proc_tree(root))


def tree_rss_mib(root: int) -> float:
    total = 0
    for p in proc_tree(root):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def db_child_pids(root: int) -> list[int]:
    """The embedded SecantusDB daemon(s) in the server's process tree."""
    out = []
    for pid in proc_tree(root):
        try:
            if b"secantusd" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


def pids_cpu_seconds(pids) -> float:
    """utime+stime (all threads) of these processes (gone ones count 0)."""
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / TICK


def machine_busy_seconds() -> float:
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))]


# --------------------------------------------------------------------------- the server under test
class Provider:
    """A fresh data dir, test user + clients via the CLI, then ``idp serve`` in the background."""

    def __init__(self, workers: int, threads: int, face: bool, keep: bool = False, source: Path | None = None):
        self.workers, self.threads, self.face, self.keep = workers, threads, face, keep
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="oidc-bench-"))
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MONGODB_URI", "IDP_EMBEDDED_MONGODB_URI", "IDP_DATA_DIR", "IDP_ISSUER")}
        self.env.update(IDP_DATA_DIR=str(self.dir / "data"), IDP_ISSUER=self.base, PYTHONUNBUFFERED="1")
        if not face:
            self.env["IDP_FACE_ENABLED"] = "0"
        if source is not None:  # serve an exported commit instead of the working tree
            self.env["PYTHONPATH"] = str(source)
        self.idp = str(Path(sys.executable).parent / "idp")
        self.proc: subprocess.Popen | None = None
        self.clients: dict[str, dict] = {}

    def cli(self, *args, stdin: str | None = None) -> str:
        r = subprocess.run([self.idp, *args], input=stdin, env=self.env, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"idp {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
        return r.stdout

    def prepare(self) -> None:
        self.cli("users", "create", "--username", USER, "--email", f"{USER}@example.test", "--password-stdin",
                 stdin=PASSWORD + "\n")
        for name, public in (("conf", False), ("pub", True)):
            args = ["clients", "create", "--name", f"bench-{name}", "--redirect-uri", REDIRECT_URI,
                    "--scope", SCOPE, "--face", "optional", "--json"] + (["--public"] if public else [])
            out = self.cli(*args)
            self.clients[name] = json.loads(out[out.index("{"):])

    def start(self) -> None:
        # The face model is converted from its frozen graph into <data_dir>/models on first start (minutes);
        # reuse a conversion from an earlier run, as a long-lived deployment's data dir would.
        models = self.dir / "data" / "models"
        if self.face and MODEL_CACHE.is_dir() and not models.exists():
            shutil.copytree(MODEL_CACHE, models)
        self.log = open(self.dir / "server.log", "w")
        self.proc = subprocess.Popen(
            [self.idp, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--threads", str(self.threads)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"idp serve exited {self.proc.returncode}; see {self.dir}/server.log")
            try:
                self.meta = discovery(self.base)
                # every worker must be up (face models loaded) before measuring: wait until the
                # tree's CPU use settles
                self._settle()
                if self.face and models.is_dir() and not MODEL_CACHE.exists():
                    shutil.copytree(models, MODEL_CACHE)
                return
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("server not ready after 300 s")

    def _settle(self, quiet_s: float = 2.0) -> None:
        last = tree_cpu_seconds(self.proc.pid)
        for _ in range(240):
            time.sleep(quiet_s)
            now = tree_cpu_seconds(self.proc.pid)
            if now - last < 0.15 * quiet_s:
                return
            last = now

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session we started (start_new_session)
                self.proc.wait()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- measurements
def bench_signin(p: Provider, duration: float, concurrency: int, warmup: float = 3.0) -> dict:
    conf = p.clients["conf"]
    sign_in(p.meta, conf["client_id"], conf["client_secret"], USER, PASSWORD)  # first one gives consent
    lat: list[float] = []
    errors: list[str] = []
    stop_at = [0.0]
    measuring = threading.Event()
    lock = threading.Lock()

    def worker():
        http = requests.Session()
        while time.monotonic() < stop_at[0]:
            http.cookies.clear()  # a new browser for every sign-in, keep-alive connections reused
            t0 = time.monotonic()
            try:
                sign_in(p.meta, conf["client_id"], conf["client_secret"], USER, PASSWORD, http=http)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(e)[:200])
                continue
            t1 = time.monotonic()
            if measuring.is_set() and t1 <= stop_at[0]:
                with lock:
                    lat.append(t1 - t0)

    stop_at[0] = time.monotonic() + warmup + duration
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(warmup)
    ru0 = os.times()
    dbp = db_child_pids(p.proc.pid)
    d0 = pids_cpu_seconds(dbp)
    c0, m0, t0 = tree_cpu_seconds(p.proc.pid), machine_busy_seconds(), time.monotonic()
    measuring.set()
    time.sleep(duration)
    c1, m1, t1 = tree_cpu_seconds(p.proc.pid), machine_busy_seconds(), time.monotonic()
    d1 = pids_cpu_seconds(dbp)
    ru1 = os.times()
    for t in threads:
        t.join()
    wall = t1 - t0
    cpu = c1 - c0
    n = len(lat)
    return {
        "scenario": "signin", "concurrency": concurrency, "signins": n, "errors": len(errors),
        "error_sample": errors[:3], "signins_per_s": round(n / wall, 2),
        "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
        "server_cpu_s": round(cpu, 2), "server_cores": round(cpu / wall, 2), "db_cpu_s": round(d1 - d0, 2),
        "signins_per_server_cpu_s": round(n / cpu, 2) if cpu else None,
        "loadgen_cpu_s": round((ru1.user + ru1.system) - (ru0.user + ru0.system), 2),
        "machine_busy_cores": round((m1 - m0) / wall, 2), "duration_s": round(wall, 2),
    }


def bench_harness(p: Provider, scenario: str, duration: int, conns: int, results: Path, label: str) -> dict:
    run_sh = HARNESS / "run.sh"
    if not run_sh.exists():
        raise SystemExit(f"peer harness not found at {HARNESS} (set PEERS_HARNESS)")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not installed: apt-get install -y wrk")
    path = lambda key: urllib.parse.urlsplit(p.meta[key]).path  # noqa: E731
    conf, pub = p.clients["conf"], p.clients["pub"]
    scratch = p.dir / "peers"
    scratch.mkdir(exist_ok=True)
    env = dict(p.env,
               BASE_URL=p.base, SERVER_PID=str(p.proc.pid), PEER_NAME="deep-auth", LABEL=label,
               DISCOVERY_PATH="/.well-known/openid-configuration", TOKEN_PATH=path("token_endpoint"),
               INTROSPECT_PATH=path("introspection_endpoint"),
               CONF_CLIENT_ID=conf["client_id"], CONF_CLIENT_SECRET=conf["client_secret"],
               PUB_CLIENT_ID=pub["client_id"], BENCH_CLIENTS=json.dumps(p.clients),
               MINT_CMD=f"{sys.executable} {Path(__file__).resolve()} mint {{n}} {{out}} {{client}} {{base}}",
               PEERS_SCRATCH=str(scratch), RESULTS=str(scratch / "results.jsonl"),
               DURATION=str(duration), CONNS=str(conns))
    r = subprocess.run(["bash", str(run_sh), "external", scenario], env=env, capture_output=True, text=True,
                       timeout=duration * 3 + 300)
    if r.returncode != 0:
        raise RuntimeError(f"harness failed: {r.stdout[-1500:]} {r.stderr[-1500:]}")
    rec = json.loads((scratch / "results.jsonl").read_text().splitlines()[-1])
    if r.stderr.strip():
        rec["harness_stderr"] = r.stderr.strip()[-500:]
    return rec


def bench_refresh_split(p: Provider, duration: int, conns: int) -> dict:
    """Where the server CPU of the refresh load goes: the harness's refresh.lua under wrk, with per-process
    CPU deltas (gunicorn workers vs the embedded database). Families minted by the real flow first."""
    pub = p.clients["pub"]
    fams = p.dir / "split-families.jsonl"
    with open(fams, "w") as f:
        for _ in range(conns):
            f.write(json.dumps(sign_in(p.meta, pub["client_id"], None, USER, PASSWORD)) + "\n")
    tree = proc_tree(p.proc.pid)
    dbp = db_child_pids(p.proc.pid)
    app = [q for q in tree if q not in dbp]
    a0, d0, t0 = pids_cpu_seconds(app), pids_cpu_seconds(dbp), time.monotonic()
    env = dict(os.environ, TOKENS=str(fams), TOKEN_PATH=urllib.parse.urlsplit(p.meta["token_endpoint"]).path,
               CLIENT_ID=pub["client_id"], CLIENT_SECRET="", WRK_LUA_DIR=str(HARNESS / "wrk"))
    r = subprocess.run(["wrk", f"-t{conns}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s",
                        str(HARNESS / "wrk" / "refresh.lua"), p.base], env=env, capture_output=True, text=True,
                       timeout=duration + 60)
    a1, d1, t1 = pids_cpu_seconds(app), pids_cpu_seconds(dbp), time.monotonic()
    res = json.loads(next(line[7:] for line in r.stdout.splitlines() if line.startswith("RESULT ")))
    n = res["requests"]
    return {"scenario": "refresh-split", "requests": n, "non200": res["non_200"], "rps": round(res["rps"], 1),
            "app_cpu_s": round(a1 - a0, 2), "db_cpu_s": round(d1 - d0, 2),
            "app_ms_per_refresh": round((a1 - a0) / n * 1000, 2) if n else None,
            "db_ms_per_refresh": round((d1 - d0) / n * 1000, 2) if n else None,
            "db_share": round((d1 - d0) / ((a1 - a0) + (d1 - d0)), 2) if n else None,
            "duration_s": round(t1 - t0, 2)}


def export_ref(ref: str) -> tuple[Path, str]:
    """``git archive`` of ``ref`` into a temp dir (served via PYTHONPATH, ahead of the editable install)."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = Path(tempfile.mkdtemp(prefix=f"oidc-bench-src-{commit[:8]}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest, commit


def source_label() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "idp", "migrations"],
                           capture_output=True, text=True).stdout.strip()
    return head[:10] + ("+working-tree-changes" if dirty else "")


def cmd_run(args) -> None:
    date = time.strftime("%Y-%m-%d")
    source = None
    code = source_label()
    if args.ref:
        source, commit = export_ref(args.ref)
        code = commit[:10]
    print(f"code under test: {code}", flush=True)
    results = Path(args.results or ROOT / "benchmarks" / "results" / f"oidc-{date}.jsonl")
    results.parent.mkdir(parents=True, exist_ok=True)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    summary = []
    for threads in args.threads:
        p = Provider(args.workers, threads, face=not args.no_face, keep=args.keep, source=source)
        setting = f"gunicorn gthread {args.workers}x{threads}" + ("" if not args.no_face else ", face off")
        print(f"== {setting}: preparing {p.dir}", flush=True)
        try:
            p.prepare()
            p.start()
            rss = round(tree_rss_mib(p.proc.pid))
            print(f"   server up at {p.base} (tree RSS {rss} MiB)", flush=True)
            for sc in scenarios:
                for rep in range(args.repeat):
                    if sc == "signin":
                        rec = bench_signin(p, args.duration, args.signin_concurrency)
                    elif sc == "refresh-split":
                        rec = bench_refresh_split(p, int(args.duration), args.conns)
                    else:
                        rec = bench_harness(p, sc, int(args.duration), args.conns, results, setting)
                    rec.update(setting=setting, workers=args.workers, threads=threads, face=not args.no_face,
                               server_rss_mib=rss, rep=rep + 1, code=code, time=time.strftime("%Y-%m-%dT%H:%M:%S"),
                               scenario=sc)
                    with results.open("a") as f:
                        f.write(json.dumps(rec) + "\n")
                    summary.append(rec)
                    print("   " + " ".join(f"{k}={v}" for k, v in rec.items()
                                           if k not in ("time", "error_sample", "label", "setting")), flush=True)
                    if rec.get("error_sample"):
                        print(f"   errors: {rec['error_sample']}", flush=True)
        finally:
            p.stop()
    if source is not None:
        shutil.rmtree(source, ignore_errors=True)
    print(f"\nresults appended to {results}")


def cmd_mint(args) -> None:
    """Mint N independent token families for the peer harness, each by the real HTTP flow."""
    clients = json.loads(os.environ["BENCH_CLIENTS"])
    c = clients[args.client]
    meta = discovery(args.base)
    with open(args.out, "w") as f:
        for _ in range(args.n):
            tok = sign_in(meta, c["client_id"], c.get("client_secret"), USER, PASSWORD)
            if "refresh_token" not in tok:
                raise SystemExit(f"no refresh_token in token response (keys {sorted(tok)})")
            f.write(json.dumps(tok) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--threads", type=int, nargs="+", default=[4])
    r.add_argument("--duration", type=float, default=15)
    r.add_argument("--conns", type=int, default=8)
    r.add_argument("--signin-concurrency", type=int, default=4)
    r.add_argument("--scenarios", default="signin,refresh")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--no-face", action="store_true", help="IDP_FACE_ENABLED=0 (face models not loaded)")
    r.add_argument("--keep", action="store_true", help="keep the temporary data dir and server log")
    r.add_argument("--results")
    r.add_argument("--ref", help="benchmark this git ref (exported with git archive) instead of the working tree")
    m = sub.add_parser("mint")
    m.add_argument("n", type=int)
    m.add_argument("out")
    m.add_argument("client", choices=["pub", "conf"])
    m.add_argument("base")
    args = ap.parse_args()
    cmd_run(args) if args.cmd == "run" else cmd_mint(args)


if __name__ == "__main__":
    main()
