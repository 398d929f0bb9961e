"""Anonymous requests whose answer or parse grows with what they send: the sign-out confirmation page echoed
every posted parameter (1.2 MB of empty parameters in, 6.6 MB of page out), and every form and OAuth endpoint
parsed bodies up to ``IDP_MAX_BODY_BYTES`` (2 MiB, meant for face frames) into parameter lists (about 90 MB
of memory for 2 MiB of ``a=&a=&...``), for anyone, before any check."""
from __future__ import annotations

import re

import requests

from oauth.conftest import cheap_password_hashing, idp, make_server, rp  # noqa: F401

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_the_sign_out_page_carries_only_the_logout_parameters(idp, rp):
    """RP-Initiated Logout 1.0 §2 names the parameters of a logout request; the confirmation form carries
    those and nothing else a request added."""
    params = {f"junk{i}": "x" for i in range(500)}
    params.update(client_id=rp.client_id, state="s1", ui_locales="en")
    for r in (requests.post(f"{idp.url}/end-session", data=params),
              requests.get(f"{idp.url}/end-session", params={k: v for k, v in list(params.items())[-60:]})):
        assert r.status_code == 200, r.text[:200]
        carried = re.findall(r'<input type="hidden" name="([^"]+)"', r.text)
        assert sorted(carried) == ["client_id", "csrf_token", "state", "ui_locales"], carried[:10]


def test_form_and_oauth_bodies_are_limited_below_the_frame_limit(idp, rp):
    """Only the face frame endpoint takes bodies up to ``IDP_MAX_BODY_BYTES``; every other request's body is
    refused above ``IDP_MAX_FORM_BYTES`` (413) before it is parsed."""
    body = "a=&" * (400 * 1024 // 3)
    for path in ("/end-session", "/oauth/token", "/oauth/introspect", "/oauth/revoke", "/login", "/register",
                 "/forgot", "/account/password"):
        r = requests.post(f"{idp.url}{path}", data=body, headers=FORM)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
    # an ordinary request still goes through
    r = requests.post(f"{idp.url}/oauth/introspect", data={"token": "nope"}, auth=(rp.client_id, rp.secret))
    assert r.status_code == 200 and r.json() == {"active": False}


def test_answers_to_anonymous_requests_are_not_kept_for_hours(idp, rp):
    """An authorization request cancelled before any sign-in (three requests, no account): its answer, as large
    as the request's ``state`` (7 KB here), was kept with the request's claim for the whole session lifetime
    (8 h) while the anonymous session itself lives 10 minutes. The claim stays (small); the answer goes once its
    keep time (the code lifetime) is over."""
    from datetime import datetime, timedelta, timezone

    import bson

    from support.oidc import csrf_from
    for _ in range(5):
        s = requests.Session()
        r = s.get(rp.authorize_url(state="S" * 7000))
        assert "/login" in r.url, r.url
        rid = re.search(r'name="rid" value="([^"]+)"', r.text).group(1)
        c = s.post(f"{idp.url}/authorize/cancel", data={"csrf_token": csrf_from(r.text), "rid": rid},
                   allow_redirects=False)
        assert c.status_code in (302, 303), c.status_code
    later = datetime.now(timezone.utc) + timedelta(seconds=2 * idp.app.config["IDP"].code_lifetime_s)
    long_lived = list(idp.db.request_answers.find({"expires": {"$gt": later}}))
    assert len(long_lived) == 5  # the claims
    assert max(len(bson.encode(d)) for d in long_lived) < 300, [len(bson.encode(d)) for d in long_lived]


def test_unknown_client_ids_are_not_kept_in_process_memory(idp, rp):
    """Every ``/authorize`` looks its ``client_id`` up through an in-process cache, which kept misses too: anyone
    could store 10,000 ids of up to 8 KB (the request line) in each worker's memory, and flush the cache."""
    from idp.oauth import clients
    ids = [f"nobody-{i}-" + "x" * 4000 for i in range(20)]
    for client_id in ids:
        r = requests.get(f"{idp.url}/authorize", params={"client_id": client_id, "response_type": "code"})
        assert r.status_code == 400, r.status_code
    assert [k for k in list(clients._cache) if k[1] in ids] == []
    r = requests.get(rp.authorize_url())
    assert "/login" in r.url  # a known client is still served (and kept)
    assert any(k[1] == rp.client_id for k in list(clients._cache))
