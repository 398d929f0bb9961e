"""Property-based fuzzing of every endpoint of the app: whatever a client sends, the answer is never a 5xx and
the server log never shows a traceback.

The endpoints are checked against ``app.url_map``: a new endpoint fails ``test_endpoint_list_matches_the_url_map``
until it is added to ``ENDPOINTS`` (then it is fuzzed like the others), and a path argument without a value
strategy fails ``test_every_endpoint_is_fuzzed``. Each example is one request built from:
who sends it (anonymous, a signed-in user, a signed-in administrator), the method, path arguments (real ids or
garbage), query parameters and a body — a form with the field names the app reads (valid CSRF token most of
the time, so the fuzz gets past it), arbitrary JSON (RFC 7591 metadata-shaped for registration), or raw bytes
(face frames) — and headers (real or garbage bearer tokens, client credentials, capture nonces).

The app is the real one on the real database, with the real face engine (a frame that decodes is analysed).

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default) 200 examples per endpoint; ``long`` 10,000 per endpoint
(hours for all endpoints; ``-k`` picks some, e.g. ``-k "oauth.token or oauth.register"``)::

    HYPOTHESIS_PROFILE=long python -m pytest -q tests/security/test_fuzz_endpoints.py
"""
from __future__ import annotations

import base64
import collections
import hashlib
import io
import json
import logging
import os
import secrets
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support.oidc import CALLBACK as RP_CALLBACK
from support.oidc import CSRF_META, CSRF_RE, csrf_from

settings.register_profile(
    "ci", max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("long", parent=settings.get_profile("ci"), max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PASSWORD = "correct horse battery staple 42"
ADMIN_PASSWORD = "root password for the fuzzer 42"
REG_TOKEN = "fuzz-initial-access-token-0123456789"
SKIP = {"static"}  # files from disk, no input handling
# Requests to these may end the sending session (which then answers with a Set-Cookie).
MAY_SIGN_OUT = {"accounts.logout", "accounts.reset_password", "admin.user_disable", "admin.user_delete", "oauth.end_session", "accounts.change_password", "face.delete", "face.reenroll",
                "face.recover", "oauth.authorize", "oauth.authorize_post", "oauth.cancel", "oauth.consent",
                "oauth.select_account", "accounts.sign_out_everywhere", "accounts.undo_email_change"}


# --- the app ------------------------------------------------------------------------------------------

class Env:
    """The app under test, its data and one persistent test client per kind of sender."""

    def __init__(self, app):
        self.app = app
        self.db = app.extensions["db"]
        self.clients: dict = {}
        self.errors: list[logging.LogRecord] = []

    def client(self, who: str):
        if who not in self.clients:
            self.clients[who] = self._new_client(who)
        return self.clients[who]

    def reset(self):
        """Put back what earlier examples may have used up or changed: the two clients (as created, same id
        and secret), fresh codes and tokens, the user's face-data consent. Called before each endpoint."""
        from idp.faceweb import notice
        from idp.oauth import clients, tokens
        from idp.oauth.models import Client, UserRef
        db, config, alice = self.db, self.config, self.alice
        rp_id, spa_id = self.client_ids
        for cid in self.client_ids + self.admin_client_ids:
            clients.delete_client(db, cid)
        for i, cid in enumerate(self.admin_client_ids):
            clients.create_client(db, config, f"Spare {i}", [RP_CALLBACK], client_id=cid)
        rp, _ = clients.create_client(db, config, "Fuzz RP", [RP_CALLBACK], client_id=rp_id, secret=self.rp_secret,
                                      post_logout_redirect_uris=["https://rp.example/"])
        clients.create_client(db, config, "Fuzz SPA", [RP_CALLBACK], public=True, client_id=spa_id)
        notice.record_consent(db, alice["_id"])
        challenge = base64.urlsafe_b64encode(hashlib.sha256(self.verifier.encode()).digest()).rstrip(b"=").decode()
        self.codes = []
        for cid in self.client_ids:
            for _ in range(20):
                code = secrets.token_urlsafe(32)
                tokens.save_code(db, config, code, client_id=cid, user_id=alice["_id"], redirect_uri=RP_CALLBACK,
                                 scope="openid profile email", nonce="n", code_challenge=challenge,
                                 code_challenge_method="S256", auth_time=1, amr=["pwd"], acr=None)
                self.codes.append(code)
        fam = tokens.new_family()
        self.access, self.refresh = tokens.make_token(fam), tokens.make_token(fam)
        tokens.issue(db, config, family=fam, client_id=rp_id, user_id=alice["_id"], scope="openid profile",
                     access_token=self.access, refresh_token=self.refresh, auth_time=1, amr=["pwd"], acr=None)
        with self.app.app_context():
            self.id_token = self.app.extensions["oauth_server"].sign_id_token(
                Client(rp, config), UserRef(alice["_id"], alice), "openid")
        self.clients.clear()

    def forget(self, who: str):
        self.clients.pop(who, None)

    def _new_client(self, who):
        c = self.app.test_client()
        c.environ_base["HTTP_USER_AGENT"] = "fuzzer"
        page = c.get("/login")
        token = csrf_from(page.text)
        if who != "anon":
            user, pw = ("alice", PASSWORD) if who == "user" else ("root", ADMIN_PASSWORD)
            r = c.post("/login", data={"csrf_token": token, "username": user, "password": pw})
            assert r.status_code == 302, (who, r.status_code, r.text[:300])
            page = c.get("/account/password")
            m = CSRF_RE.search(page.text)
            token = (m.group(1) or m.group(2)) if m else CSRF_META.search(page.text).group(1)
        c.csrf = token
        return c


class _Collect(logging.Handler):
    def __init__(self, sink):
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record):
        if record.levelno >= logging.ERROR or record.exc_info:
            self.sink.append(record)


def _jpeg(size=(64, 48), color=(200, 150, 120)) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def env(mongo_server, face_data_dir):
    from idp import create_app
    from idp.accounts import passwords, users
    from idp.config import Config
    from idp.oauth import clients

    old_hasher = passwords.set_hasher(passwords.make_hasher(time_cost=1, memory_cost=8192, parallelism=1))
    data_dir = face_data_dir  # the session's face models, loaded once
    name = "t_fuzz_" + os.urandom(3).hex()
    config = Config(data_dir=data_dir, mongodb_uri=mongo_server.uri, db_name=name, face_enabled=True,
                    registration_access_token=REG_TOKEN,
                    # the fuzzer's own sign-ins (and registrations) must keep working whatever it sent before
                    login_free_failures=10**6, login_ip_free_failures=10**6, register_ip_limit=0,
                    bearer_ip_free_failures=10**6,
                    extra={"auto_migrate": True, "keep_logging": True})
    app = create_app(config)
    app.testing = False
    e = Env(app)
    db = e.db
    alice = users.create_user(db, "alice", "alice@example.org", PASSWORD, name="Alice")
    root = users.create_user(db, "root", "root@example.org", ADMIN_PASSWORD, name="Root", is_admin=True)
    e.config, e.alice, e.root = config, alice, root
    e.user_ids = [alice["_id"], root["_id"]]
    e.client_ids = [secrets.token_urlsafe(18), secrets.token_urlsafe(18)]  # the RP and the SPA
    e.rp_secret = clients.new_secret()
    # clients the admin pages may delete, disable or rotate (path arguments), leaving the two above alone
    e.admin_client_ids = [secrets.token_urlsafe(18) for _ in range(3)]
    e.verifier = secrets.token_urlsafe(48)
    e.reset()
    e.jpeg = _jpeg()
    handler = _Collect(e.errors)
    logging.getLogger().addHandler(handler)
    yield e
    logging.getLogger().removeHandler(handler)
    passwords.set_hasher(old_hasher)
    db.client.drop_database(name)
    db.client.close()  # also ends the app's background senders before the database server stops


# --- strategies ---------------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
# What can arrive in a header: a WSGI server hands header bytes over as latin-1 text, never with a line break.
HEADER_TEXT = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40)
NASTY = st.sampled_from(["", " ", "\x00", "\t", "\r\n", "\u00e9", "\U0001f600", "%00", "%C3%A9", "../..", "a" * 3000,
                         "-1", "0", "1e309", "NaN", "99999999999999999999999", "null", "[]", "{}", "true",
                         "<script>", "' OR 1=1 --", "$where", "{\"$gt\": \"\"}", "\\", "\ud7ff", "\ufffe"])

# Names the app reads from forms and query strings (grep request.form / request.args / the form classes),
# and the OAuth parameters.
FIELDS = ["username", "password", "name", "email", "phone", "confirm", "current_password", "new_password",
          "submit", "next", "code", "consent", "decision", "enabled", "event", "face_policy", "notice_version",
          "post_logout_redirect_uris", "public", "redirect_uris", "rid", "scope", "skip_consent", "user", "user_id",
          "page", "reenroll", "login_hint", "grant_type", "refresh_token", "redirect_uri", "code_verifier",
          "client_id", "client_secret", "token", "token_type_hint", "access_token", "response_type", "state", "nonce",
          "code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values", "request", "request_uri",
          "_rid", "id_token_hint", "post_logout_redirect_uri", "logout_hint", "ui_locales", "grant_types",
          "id_token_signed_response_alg", "can_introspect", "claims", "viewport", "login", "q", "account", "choice",
          "signin_request"]

# The fields each endpoint reads: drawn far more often for it than other names, so that requests get past
# "missing parameter" and reach the deeper checks.
_AUTHORIZE = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
              "code_challenge_method", "prompt", "max_age", "acr_values", "request", "request_uri", "_rid", "login_hint"]
_CLIENT_AUTH = ["client_id", "client_secret"]
_ADMIN_CLIENT = ["name", "redirect_uris", "post_logout_redirect_uris", "scope", "face_policy", "public", "enabled",
                 "skip_consent", "grant_types", "id_token_signed_response_alg", "can_introspect"]
ENDPOINT_FIELDS = {
    "oauth.authorize": _AUTHORIZE, "oauth.authorize_post": _AUTHORIZE,
    "oauth.cancel": ["rid", "_rid", "signin_request"],
    "oauth.restart": ["signin_request"],
    "oauth.token": ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", *_CLIENT_AUTH],
    "oauth.revoke": ["token", "token_type_hint", *_CLIENT_AUTH],
    "oauth.introspect": ["token", "token_type_hint", *_CLIENT_AUTH],
    "oauth.userinfo": ["access_token"],
    "oauth.end_session": ["id_token_hint", "post_logout_redirect_uri", "client_id", "state", "logout_hint",
                          "ui_locales", "confirm"],
    "oauth.consent": ["rid", "decision", "account", "signin_request"],
    "oauth.select_account": ["rid", "choice", "account", "signin_request"],
    "accounts.login": ["username", "password", "next", "signin_request"],
    "accounts.register": ["name", "username", "email", "phone", "password", "confirm", "signin_request"],
    "accounts.change_password": ["current_password", "new_password", "confirm"],
    "oauth_admin.new": _ADMIN_CLIENT, "oauth_admin.edit": _ADMIN_CLIENT,
    "admin.audit_log": ["page", "event", "user"], "admin.face_reset": ["user_id"],
    "face.consent": ["consent", "notice_version"], "face.recover": ["code"], "face.reenroll": ["password"],
    "face.delete": ["password"], "face.verify": ["reenroll"],
    "accounts.forgot_password": ["login"], "accounts.reset_password": ["new_password", "confirm"],
    "accounts.undo_email_change": ["new_password", "confirm"],
    "accounts.change_email": ["email", "current_password"], "admin.users_search": ["q", "page"],
    "admin.user_disable": ["confirm"], "admin.user_delete": ["confirm"], "admin.user_unlock_face": ["confirm"],
    "admin.user_void_recovery_codes": ["confirm"],
}

REGISTRATION_KEYS = ["redirect_uris", "client_name", "scope", "token_endpoint_auth_method", "grant_types",
                     "response_types", "post_logout_redirect_uris", "contacts", "client_uri", "logo_uri", "tos_uri",
                     "policy_uri", "jwks_uri", "jwks", "software_id", "software_version", "software_statement",
                     "id_token_signed_response_alg"]

def _json_containers(children):
    keys = TEXT | st.sampled_from(REGISTRATION_KEYS)
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT | NASTY,
                    _json_containers, max_leaves=12)


def _good_values(env) -> dict:
    """Values that get past the first checks, per field name."""
    return {
        "username": ["alice", "root", "alice@example.org"], "password": [PASSWORD],
        "client_id": env.client_ids, "redirect_uri": [RP_CALLBACK], "redirect_uris": [RP_CALLBACK],
        "post_logout_redirect_uri": ["https://rp.example/"], "response_type": ["code"],
        "scope": ["openid", "openid profile email", "openid phone"], "grant_type": ["authorization_code",
                                                                                  "refresh_token"],
        "code": env.codes, "code_verifier": [env.verifier], "code_challenge_method": ["S256"],
        "code_challenge": [base64.urlsafe_b64encode(hashlib.sha256(env.verifier.encode()).digest())
                           .rstrip(b"=").decode()],
        "refresh_token": [env.refresh], "token": [env.access, env.refresh], "access_token": [env.access],
        "token_type_hint": ["access_token", "refresh_token"], "id_token_hint": [env.id_token],
        "client_secret": [env.rp_secret], "prompt": ["none", "login", "consent"], "decision": ["allow", "deny"],
        "consent": ["yes"], "confirm": ["yes"], "face_policy": ["required", "optional"], "public": ["on"],
        "enabled": ["on", "yes"], "user_id": env.user_ids, "user": ["alice", "root"], "page": ["1", "2", "-1"],
        "account": env.user_ids, "choice": ["continue", "another"],
        "max_age": ["0", "60"], "acr_values": ["urn:deepauth:acr:pwd+face"],
        "event": ["oauth.code_issued", "account.login"], "id_token_signed_response_alg": ["RS256", "ES256"],
    }


def _value(draw, env, field):
    good = _good_values(env).get(field)
    # good values first: Hypothesis leans towards the first branch of one_of
    options = ([st.sampled_from(good)] * 6 if good else []) + [TEXT, NASTY]
    return draw(st.one_of(*options))


def _params(draw, env, endpoint, max_extra=3) -> dict:
    """Mostly the endpoint's own fields (each present 4 times in 5), plus a few other names."""
    names = [f for f in ENDPOINT_FIELDS.get(endpoint, []) if draw(st.integers(0, 4)) < 4]
    names += draw(st.lists(st.sampled_from(FIELDS) | TEXT, max_size=max_extra))
    return {n: _value(draw, env, n) for n in dict.fromkeys(names)}


def _path_value(draw, env, arg):
    real = {"client_id": env.admin_client_ids + env.client_ids[:1], "purpose": ["enroll", "enroll", "verify", "reenroll"],
            "capture_id": ["__real__"], "uid": env.user_ids,
            # emailed-link tokens: well-formed but unknown (the real ones only arrive by mail)
            "token": ["A" * 43, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"]}.get(arg)
    if real is None:
        raise LookupError(arg)
    real = st.sampled_from(real)
    return draw(st.one_of(real, real, real, TEXT.filter(lambda s: s and "/" not in s), NASTY.filter(bool)))


PATH_ARGS = {"client_id", "purpose", "capture_id", "uid", "token"}


@st.composite
def requests_for(draw, env, rule):
    """One request to ``rule``: (who, method, path arguments, query parameters, kwargs for the test client);
    "__csrf__" / "__nonce__" / "__real__" stand for the sender's CSRF token and a capture it starts."""
    who = draw(st.sampled_from(["anon", "user", "admin"]))
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    method = draw(st.sampled_from(methods))
    values = {a: _path_value(draw, env, a) for a in sorted(rule.arguments)}
    headers = {}
    if draw(st.integers(0, 9)) < 8:
        headers["X-CSRFToken"] = "__csrf__"
    auth = draw(st.sampled_from(["none", "bearer", "basic", "reg", "garbage"]))
    if rule.endpoint == "oauth.register" and draw(st.integers(0, 4)) > 0:
        auth = "reg"
    if auth == "bearer":
        headers["Authorization"] = "Bearer " + draw(st.sampled_from([env.access, env.refresh]) | HEADER_TEXT)
    elif auth == "basic":
        user = draw(st.sampled_from(env.client_ids) | TEXT)
        pw = draw(st.sampled_from([env.rp_secret]) | TEXT)
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    elif auth == "reg":
        headers["Authorization"] = f"Bearer {REG_TOKEN}"
    elif auth == "garbage":
        headers["Authorization"] = draw(HEADER_TEXT)
    if draw(st.booleans()):
        headers["Accept"] = draw(st.sampled_from(["application/json", "text/html", "*/*", "image/png", "x"]))
    if "capture_id" in rule.arguments or draw(st.integers(0, 9)) == 0:
        headers["X-Capture-Nonce"] = draw(st.sampled_from(["__nonce__"]) | HEADER_TEXT)
        headers["X-Frame-Time"] = draw(st.sampled_from(["1700000000000", "-1", "nan", "inf", "1e400"]) | HEADER_TEXT)
    query = _params(draw, env, rule.endpoint if method == "GET" else None, 4 if method == "GET" else 2)
    kwargs = {"headers": headers}
    if method != "GET":
        kinds = {"oauth.register": ["json", "json", "json", "form", "bytes"],
                 "face.api_frame": ["bytes", "bytes", "bytes", "form", "json"]}.get(rule.endpoint)
        body = draw(st.sampled_from(kinds or ["form", "form", "form", "json", "bytes"]))
        if body == "form":
            form = _params(draw, env, rule.endpoint)
            if draw(st.integers(0, 9)) < 8:
                form["csrf_token"] = "__csrf__"
            if draw(st.booleans()):  # repeated fields (e.g. scope checkboxes)
                field = draw(st.sampled_from(FIELDS))
                form[field] = [_value(draw, env, field) for _ in range(draw(st.integers(2, 3)))]
            kwargs["data"] = form
        elif body == "json":
            if rule.endpoint == "oauth.register" and draw(st.booleans()):
                doc = {k: draw(JSON) for k in draw(st.lists(st.sampled_from(REGISTRATION_KEYS), max_size=5))}
                if draw(st.booleans()):
                    doc["redirect_uris"] = draw(st.sampled_from([[RP_CALLBACK], RP_CALLBACK]) | JSON)
                value = doc
            elif rule.endpoint == "face.api_finish" and draw(st.booleans()):  # the page's request, or not one
                value = {"signin_request": draw(st.sampled_from(["", "x.y.z"]) | TEXT | JSON)}
            else:
                value = draw(JSON)
            kwargs["data"] = json.dumps(value)
            kwargs["content_type"] = "application/json"
        else:
            kwargs["data"] = draw(st.sampled_from([env.jpeg, env.jpeg[:200], b"", b"\xff\xd8\xff"]) |
                                  st.binary(max_size=2048))
            kwargs["content_type"] = draw(st.sampled_from(["image/jpeg", "image/png", "application/octet-stream",
                                                           "application/json", "text/plain; charset=\u00e9",
                                                           "multipart/form-data", ""]))
    return who, method, values, query, kwargs


# --- the tests ------------------------------------------------------------------------------------------

def _rules(app):
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in SKIP), key=lambda r: r.rule)


def test_every_endpoint_is_fuzzed(env):
    """Every route is fuzzed (enumerated from the url map) and every path argument has a strategy."""
    rules = _rules(env.app)
    assert len(rules) >= 35, len(rules)
    missing = {(r.endpoint, a) for r in rules for a in r.arguments if a not in PATH_ARGS}
    assert not missing, f"path arguments without a fuzz strategy: {sorted(missing)}"
    with_body = {r.endpoint for r in rules if r.methods & {"POST", "PUT", "PATCH", "DELETE"}}
    assert {"oauth.token", "oauth.register", "face.api_frame", "accounts.login"} <= with_body


def _capture(env, c):
    """A capture started by the signed-in user (for the frame / finish endpoints)."""
    r = c.post("/api/face/enroll/captures", json={}, headers={"X-CSRFToken": c.csrf})
    if r.status_code == 201:
        return r.get_json()
    return None


def _send(env, who, method, rule, values, query, kwargs):
    c = env.client(who)
    kwargs = dict(kwargs)
    headers = dict(kwargs.get("headers") or {})
    if headers.get("X-CSRFToken") == "__csrf__":
        headers["X-CSRFToken"] = c.csrf
    values = dict(values)
    if values.get("capture_id") == "__real__" or headers.get("X-Capture-Nonce") == "__nonce__":
        cap = _capture(env, c) if who != "anon" else None
        if values.get("capture_id") == "__real__":
            values["capture_id"] = cap["capture_id"] if cap else "no-capture"
        if headers.get("X-Capture-Nonce") == "__nonce__":
            headers["X-Capture-Nonce"] = cap["nonce"] if cap else "no-nonce"
    kwargs["headers"] = headers
    data = kwargs.get("data")
    if isinstance(data, dict) and data.get("csrf_token") == "__csrf__":
        kwargs["data"] = {**data, "csrf_token": c.csrf}
    with env.app.test_request_context():
        path = env.app.url_map.bind("localhost").build(rule.endpoint, values, method=method)
    if query:
        path += ("&" if "?" in path else "?") + urlencode(query, doseq=True)
    return c.open(path, method=method, **kwargs)


ENDPOINTS = [
    "accounts.index", "oauth.discovery", "accounts.account", "oauth.apps", "oauth.remove_app",
    "face.account_face", "face.delete", "face.reenroll", "accounts.change_password", "accounts.logout",
    "admin.index", "admin.audit_log", "oauth_admin.index", "oauth_admin.edit", "oauth_admin.delete",
    "oauth_admin.disable", "oauth_admin.enable", "oauth_admin.rotate_secret", "oauth_admin.new", "admin.face_reset",
    "face.api_start", "face.api_finish", "face.api_frame", "oauth.authorize", "oauth.consent", "oauth.end_session",
    "face.consent", "face.continue_", "face.enroll", "face.enroll_done", "face.recover", "face.verify", "oauth.jwks",
    "oauth.introspect", "oauth.register", "oauth.revoke", "oauth.token", "oauth.userinfo", "accounts.register",
    "accounts.login", "accounts.sign_out_everywhere", "ops.healthz", "ops.readyz", "ops.metrics_view",
    "accounts.change_email", "accounts.forgot_password", "accounts.resend_verification", "accounts.reset_password",
    "accounts.verify_email", "accounts.undo_email_change", "admin.users_search", "admin.user_view",
    "admin.user_disable", "admin.user_enable",
    "admin.user_unlock_face", "admin.user_delete", "oauth.authorize_post", "oauth.cancel",
    "admin.user_void_recovery_codes", "oauth.restart", "oauth.select_account",
]


def test_endpoint_list_matches_the_url_map(env):
    """The parametrisation below names every endpoint of the app (a new one must be added to ENDPOINTS)."""
    expected = {r.endpoint for r in _rules(env.app)}
    assert not expected - set(ENDPOINTS), f"not fuzzed: {sorted(expected - set(ENDPOINTS))}"
    assert not set(ENDPOINTS) - expected, f"gone: {sorted(set(ENDPOINTS) - expected)}"


STATS: collections.Counter = collections.Counter()  # (endpoint, status) -> requests; printed with -s


@pytest.fixture(scope="module", autouse=True)
def _report_stats():
    yield
    if STATS:
        print("\nfuzzed requests by endpoint and status:")
        for (endpoint, status), n in sorted(STATS.items()):
            print(f"  {endpoint:28} {status}  {n}")
        print(f"  total {sum(STATS.values())}")


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_fuzz(env, endpoint):
    rules = [r for r in _rules(env.app) if r.endpoint == endpoint]
    assert rules, f"{endpoint} is not in the url map any more"
    env.reset()

    @given(st.data())
    def run(data):
        rule = data.draw(st.sampled_from(rules))
        who, method, values, query, kwargs = data.draw(requests_for(env, rule))
        del env.errors[:]
        resp = _send(env, who, method, rule, values, query, kwargs)
        body = resp.get_data()
        event(f"{who} {method} -> {resp.status_code}")
        STATS[(endpoint, resp.status_code)] += 1
        if endpoint in MAY_SIGN_OUT and "Set-Cookie" in resp.headers:
            env.forget(who)  # the session may have ended: the next example signs in again
        if endpoint == "ops.readyz" and resp.status_code == 503:  # unready is its documented answer
            assert resp.get_json()["status"] == "unready"
        else:
            assert resp.status_code < 500, (resp.status_code, body[:500])
        assert b"Traceback" not in body
        assert not env.errors, [r.getMessage() + str(getattr(r, "exc", "")) for r in env.errors][:3]

    run()
