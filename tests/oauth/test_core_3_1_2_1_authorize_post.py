"""OpenID Connect Core 3.1.2.1: the authorization endpoint accepts POST (form-encoded) as well as GET; the
POST is answered with a 303 to the same request as a GET (no session touched), so the flow continues with
the browser's own session."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from .conftest import RP_CALLBACK, pkce_pair


def test_post_authorize_runs_the_same_flow(idp, user, rp):
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": RP_CALLBACK,
              "scope": "openid profile", "state": "post-state", "code_challenge": challenge,
              "code_challenge_method": "S256", "nonce": "n1"}
    r = rp.browser.post(f"{idp.url}/authorize", data=params, allow_redirects=False)
    assert r.status_code == 303
    assert "Set-Cookie" not in r.headers
    loc = r.headers["Location"]
    assert {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()} == params
    res = rp.follow(idp.url + loc if loc.startswith("/") else loc)
    res = rp.login(res)
    if res.location is None:
        res = rp.consent(res)
    assert res.location.startswith(RP_CALLBACK) and res.params["state"] == "post-state"
    assert rp.redeem(res.params["code"], verifier).status_code == 200


def test_post_authorize_needs_a_form_body(idp, rp):
    import requests
    r = requests.post(f"{idp.url}/authorize", json={"client_id": rp.client_id}, allow_redirects=False)
    assert r.status_code == 400
    r = requests.post(f"{idp.url}/authorize", data=urlencode({"state": "x" * 9000}),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False)
    assert r.status_code == 400


def test_a_posted_request_whose_get_would_not_fit_the_request_line_is_refused(idp, rp):
    """The POST is answered with a 303 to the same request as a GET; a body that fits the 8 KB limit but whose
    GET would be longer than the server's request line (``idp.parsing.MAX_REQUEST_LINE``) gets this page's 400,
    not a redirect the server then refuses bare."""
    import secrets

    import requests

    from idp.parsing import fits_request_line
    body = urlencode({"response_type": "code", "client_id": rp.client_id, "redirect_uri": RP_CALLBACK,
                      "scope": "openid", "state": secrets.token_urlsafe(6040)})
    assert len(body) < 8192 and not fits_request_line("/authorize?" + body)
    r = requests.post(f"{idp.url}/authorize", data=body, allow_redirects=False,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "at most 8 KB" in r.text


def test_prompt_login_is_not_satisfied_by_a_login_in_the_same_second():
    """Core §3.1.2.1 prompt=login: the End-User MUST be re-authenticated. A login completed 0.3 s *before*
    the request, in the same whole second, used to count as fresh (auth_time is whole seconds)."""
    from idp.accounts.step import password_satisfied
    from idp.signin.flow import AuthState, PendingRequest
    t = 1_800_000_000.2
    state = AuthState(uid="u", auth_time=int(t), amr=["pwd", "face"], authenticated_at=t)
    request_later = PendingRequest(rid="r", args={}, created=int(t), min_auth_time=t + 0.3, client_id="c",
                                   acr_values=[])
    assert not password_satisfied(state, request_later)
    request_earlier = PendingRequest(rid="r", args={}, created=int(t), min_auth_time=t - 0.3, client_id="c",
                                     acr_values=[])
    assert password_satisfied(state, request_earlier)
    # a session written before the precise time existed falls back to whole seconds, failing closed
    legacy = AuthState(uid="u", auth_time=int(t), amr=["pwd"])
    assert not password_satisfied(legacy, request_later)


def test_a_request_whose_return_address_would_not_fit_the_request_line_is_refused_before_any_step(idp, rp):
    """Every step of a sign-in sends the browser back to the authorization endpoint with the request's
    parameters encoded again and its id (``PendingRequest.url``). A request that reached the server (its own
    line fits) can still make that URL longer than the server's request line: characters a browser sends as
    they are (``:``) come back percent-encoded, and the id is added. Such a request is refused at once with a
    page, before the user signs in only to land on the server's bare 400."""
    import requests

    from idp.parsing import fits_request_line
    url = rp.authorize_url(state=None) + "&state=" + ":" * 3000  # (a state the client sends unencoded)
    assert fits_request_line(url[len(idp.url):])  # the request itself reaches the server
    r = requests.get(url, allow_redirects=False)
    assert r.status_code == 400 and "too large" in r.text, (r.status_code, r.headers.get("Location"))
    fits = rp.authorize_url(state="s" * 3000)  # the same length, nothing to encode: it goes on to the login page
    r = requests.get(fits, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/login"), r.status_code
