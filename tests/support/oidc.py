"""A relying party and its user's browser over plain HTTP (``requests``; tokens read with ``joserfc``, never
with Authlib, the library under test), plus the small pieces every protocol test needs: PKCE, CSRF tokens
from pages, unverified JWT claims."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

PASSWORD = "correct horse battery staple"
CALLBACK = "https://rp.example/callback"
LOGGED_OUT = "https://rp.example/"
DEFAULT_SCOPE = "openid profile email offline_access"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
REDIRECTS = (301, 302, 303, 307)


def register_client(db, config, name: str = "Example RP", redirect_uris=(CALLBACK,), *,
                    face_policy: str = "optional", **create_kw) -> tuple[dict, str | None]:
    """Register a client through the clients service (``idp.oauth.clients.create_client``); returns
    ``(doc, secret)``. For tests of the OAuth mechanics the face policy is "optional" unless given: the
    provider's own default, "required", is refused on a server with face sign-in off
    (``unmet_authentication_requirements``), so tests about the face pass ``face_policy="required"``."""
    from idp.oauth.clients import create_client
    return create_client(db, config, name, list(redirect_uris), face_policy=face_policy, **create_kw)


def account_from(html: str) -> str:
    """The ``account`` a consent or account choice page was shown for (its answer is used for that account only)."""
    m = re.search(r'name="account" value="([^"]*)"', html)
    assert m, "no account field in the page"
    return m.group(1)


def csrf_from(html: str) -> str:
    """The ``csrf_token`` of the first form on a page."""
    m = CSRF_RE.search(html)
    assert m, "no csrf_token in the page"
    return m.group(1) or m.group(2)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def jwt_claims(token: str) -> dict:
    """The payload of a compact JWS, unverified (for tests that verify the signature elsewhere or not at all)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def query_params(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class UserAgent:
    """A user's browser over real HTTP: one cookie jar, follows redirects inside the IdP, stops at a redirect
    leaving it; does what the pages' forms and face-capture.js do."""

    def __init__(self, url: str, user_agent: str = "Mozilla/5.0 (http tests)"):
        self.url = url
        self.s = requests.Session()
        self.s.headers["User-Agent"] = user_agent

    def go(self, url, method="GET", data=None):
        """Returns (final response at the IdP, redirect leaving the IdP or None)."""
        url = url if url.startswith("http") else self.url + url
        resp = self.s.request(method, url, data=data, allow_redirects=False)
        while resp.status_code in REDIRECTS:
            loc = resp.headers["Location"]
            loc = self.url + loc if loc.startswith("/") else loc
            if not loc.startswith(self.url):
                return resp, loc
            resp = self.s.get(loc, allow_redirects=False)
        return resp, None

    def submit(self, resp, action, data):
        """Post the page's form (its CSRF token added) to ``action``."""
        return self.go(action, "POST", {"csrf_token": csrf_from(resp.text), **data})

    def capture(self, page, purpose, images):
        """On a capture page: start, frames until done, finish (with the request the page was shown for, as
        face-capture.js sends it); returns the finish JSON."""
        assert f'data-purpose="{purpose}"' in page.text
        headers = {"X-CSRFToken": CSRF_META.search(page.text).group(1), "Accept": "application/json"}
        start = re.search(r'data-start-url="([^"]+)"', page.text).group(1)
        r = self.s.post(self.url + start, json={}, headers=headers)
        assert r.status_code == 201, r.text
        cap = r.json()
        for image in images:
            body = self.s.post(self.url + cap["frames_url"], data=image, headers={
                **headers, "Content-Type": "image/jpeg", "X-Capture-Nonce": cap["nonce"]}).json()
            if body["done"]:
                break
        shown_for = re.search(r'data-signin-request="([^"]*)"', page.text)
        return self.s.post(self.url + cap["finish_url"], headers={**headers, "X-Capture-Nonce": cap["nonce"]},
                           json={"signin_request": shown_for.group(1) if shown_for else ""}).json()

    def consent_and_code(self, resp):
        """Allow on the consent page if it is shown; returns the redirect to the client (or None)."""
        if resp.headers.get("Location") is None and '/authorize/consent"' in resp.text:
            rid = re.search(r'name="rid" value="([^"]+)"', resp.text).group(1)
            resp, loc = self.submit(resp, "/authorize/consent", {"rid": rid, "decision": "allow",
                                                                     "account": account_from(resp.text)})
        else:
            loc = None
        return loc


@dataclass
class Result:
    """Where the authorization request ended: a redirect to the client or a page at the IdP."""
    response: requests.Response
    location: str | None = None
    params: dict = field(default_factory=dict)


class RelyingParty:
    """A client of the IdP (confidential with ``secret``, public without) and its user's browser.

    ``idp`` is the provider (an object with ``url``, e.g. ``support.servers.IdPServer``, or the URL itself).
    ``defaults`` are the authorization request's parameters unless a call overrides them; ``pkce=True`` adds a
    fresh S256 challenge to every ``authorize_url`` (the verifier kept in ``self.verifier``)."""

    def __init__(self, idp, client_id: str, secret: str | None, *, redirect_uri: str = CALLBACK,
                 defaults: dict | None = None, pkce: bool = False):
        self.idp, self.url = idp, getattr(idp, "url", idp)
        self.client_id, self.secret, self.redirect_uri, self.pkce = client_id, secret, redirect_uri, pkce
        self.defaults = {"scope": DEFAULT_SCOPE, **(defaults or {})}
        self.verifier: str | None = None
        self.agent = UserAgent(self.url, "Mozilla/5.0 (relying party tests)")

    @property
    def browser(self) -> requests.Session:
        """The user's browser (its cookie jar); assign a fresh ``requests.Session`` for a new browser."""
        return self.agent.s

    @browser.setter
    def browser(self, session: requests.Session) -> None:
        self.agent.s = session

    @classmethod
    def register(cls, idp, db, config, name: str = "Example RP", redirect_uris=(CALLBACK,), *,
                 defaults: dict | None = None, pkce: bool = False, **create_kw) -> RelyingParty:
        """Register a client with ``register_client`` (face policy "optional" unless given), then act as it."""
        doc, secret = register_client(db, config, name, redirect_uris, **create_kw)
        return cls(idp, doc["client_id"], secret, redirect_uri=redirect_uris[0], defaults=defaults, pkce=pkce)

    # -- browser side --
    def authorize_url(self, **params) -> str:
        """``/authorize?...``: the defaults, then ``params`` (a value of None drops that parameter)."""
        base = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                "state": secrets.token_urlsafe(8), **self.defaults}
        if self.pkce:
            self.verifier, challenge = pkce_pair()
            base.update(code_challenge=challenge, code_challenge_method="S256")
        base.update({k: v for k, v in params.items() if v is not None})
        for k in [k for k, v in params.items() if v is None]:
            base.pop(k, None)
        return f"{self.url}/authorize?{urlencode(base)}"

    def follow(self, url: str, method: str = "GET", data=None) -> Result:
        """Follow IdP redirects; stop at a redirect leaving the IdP or at a page."""
        resp, loc = self.agent.go(url, method, data)
        if loc is not None:
            return Result(resp, loc, query_params(loc))
        return Result(resp)

    def login(self, page: Result, username="alice", password=PASSWORD) -> Result:
        assert "/login" in page.response.url, page.response.url
        token = csrf_from(page.response.text)
        return self.follow(page.response.url, "POST", {"csrf_token": token, "username": username,
                                                       "password": password})

    def consent(self, page: Result, decision="allow", with_csrf=True) -> Result:
        html = page.response.text
        assert "Allow" in html and "Deny" in html
        rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
        data = {"rid": rid, "decision": decision, "account": account_from(html)}
        if with_csrf:
            data["csrf_token"] = csrf_from(html)
        return self.follow(f"{self.url}/authorize/consent", "POST", data)

    def sign_in_for_code(self, **params) -> tuple[Result, str | None]:
        """Full interactive sign-in (login page, consent page when shown); returns the final result
        and the PKCE verifier used."""
        verifier, challenge = pkce_pair()
        params.setdefault("code_challenge", challenge)
        params.setdefault("code_challenge_method", "S256")
        res = self.follow(self.authorize_url(**params))
        if res.location is None and "/login" in res.response.url:
            res = self.login(res)
        if res.location is None and '/authorize/consent"' in res.response.text:
            res = self.consent(res)
        return res, verifier

    # -- back channel --
    def auth(self):
        return (self.client_id, self.secret) if self.secret else None

    def token(self, **data) -> requests.Response:
        if not self.secret:
            data.setdefault("client_id", self.client_id)
        return requests.post(f"{self.url}/oauth/token", data=data, auth=self.auth())

    def redeem(self, code: str, verifier: str | None) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if verifier:
            data["code_verifier"] = verifier
        return self.token(**data)

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def introspect(self, token: str) -> dict:
        r = requests.post(f"{self.url}/oauth/introspect", data={"token": token}, auth=self.auth())
        assert r.status_code == 200, r.text
        return r.json()

    def sign_out_at_idp(self) -> None:
        """The user signs out on the IdP's account page, in this relying party's browser."""
        page = self.browser.get(f"{self.url}/account")
        r = self.browser.post(f"{self.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                              allow_redirects=False)
        assert r.status_code == 302, r.status_code

    def tokens(self, **params) -> dict:
        res, verifier = self.sign_in_for_code(**params)
        assert res.location and res.location.startswith(self.redirect_uri), res.response.text[:500]
        r = self.redeem(res.params["code"], verifier)
        assert r.status_code == 200, r.text
        return r.json()

    def id_token_claims(self, code: str) -> dict:
        """Redeem ``code`` (with the verifier of the last ``authorize_url``); the ID token's claims."""
        r = self.redeem(code, self.verifier)
        assert r.status_code == 200, r.text
        return jwt_claims(r.json()["id_token"])


def verified_jwt(issuer_url: str, token: str, algorithms=("RS256", "ES256")):
    """The token decoded after checking its signature against the provider's published JWKS
    (``joserfc``; the provider's own signing code is not used). Returns joserfc's token (``header``, ``claims``)."""
    from joserfc import jwt
    from joserfc.jwk import KeySet
    keys = KeySet.import_key_set(requests.get(f"{issuer_url}/jwks.json").json())
    return jwt.decode(token, keys, algorithms=list(algorithms))


def enrolled_agent(server, people, username: str = "alice") -> tuple["UserAgent", list[str]]:
    """``username`` (a new account, password ``PASSWORD``) signed in and enrolled with the first five of their
    photos in a browser of their own; that browser and the recovery codes the enrollment showed."""
    from idp.accounts.users import create_user
    from idp.faceweb.notice import NOTICE_VERSION
    create_user(server.db, username, f"{username}@example.org", PASSWORD)
    agent = UserAgent(server.url)
    page, _ = agent.go("/login")
    agent.submit(page, "/login", {"username": username, "password": PASSWORD})
    page, _ = agent.go("/face/enroll")
    page, _ = agent.submit(page, "/face/consent", {"consent": "yes", "notice_version": NOTICE_VERSION})
    assert agent.capture(page, "enroll", people[username][:5])["ok"]
    codes = re.findall(r"<li><code>([^<]+)</code>", agent.go("/face/enroll/done")[0].text)
    assert codes
    return agent, codes

