"""The sign-in page names the requesting application (client name; https logo, policy and terms links from
its registration, escaped) and offers Cancel, which returns ``error=access_denied`` with ``state`` and
``iss`` to the application (RFC 6749 4.1.2.1, RFC 9207)."""
from __future__ import annotations

import re

import pytest

from .conftest import RP, RP_CALLBACK, csrf_from


@pytest.fixture
def branded(idp):
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, 'Cats & "Dogs" <App>', [RP_CALLBACK],
                                  logo_uri="https://cdn.example/logo.png?a=1&b=2",
                                  policy_uri="https://app.example/privacy", tos_uri="https://app.example/terms")
    return RP(idp, doc["client_id"], secret)


def test_login_page_names_the_app_with_logo_and_links(idp, branded):
    res = branded.follow(branded.authorize_url())
    html = res.response.text
    assert "Cats &amp; &#34;Dogs&#34; &lt;App&gt;" in html and "<App>" not in html
    assert 'src="https://cdn.example/logo.png?a=1&amp;b=2"' in html
    assert 'href="https://app.example/privacy"' in html and 'href="https://app.example/terms"' in html
    csp = res.response.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://cdn.example;" in csp and "script-src 'self'" in csp


def test_logo_must_be_https(idp):
    from idp.oauth.clients import ClientError, create_client
    for bad in ("http://cdn.example/l.png", "data:image/svg+xml,<svg/>", "javascript:alert(1)"):
        with pytest.raises(ClientError):
            create_client(idp.db, idp.config, "X", [RP_CALLBACK], logo_uri=bad)
    with pytest.raises(ClientError):
        create_client(idp.db, idp.config, "X", [RP_CALLBACK], policy_uri="javascript:alert(1)")


def test_plain_client_named_without_logo(idp, rp):
    res = rp.follow(rp.authorize_url())
    assert "Example RP</strong> asked you to sign in" in res.response.text
    assert "<img" not in res.response.text
    assert "https://" not in res.response.headers["Content-Security-Policy"]


def test_cancel_returns_access_denied_with_state_and_iss(idp, user, rp):
    res = rp.follow(rp.authorize_url(state="st-9"))
    html = res.response.text
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    out = rp.follow(f"{idp.url}/authorize/cancel", "POST", {"rid": rid, "csrf_token": csrf_from(html)})
    assert out.location.startswith(RP_CALLBACK + "?")
    assert out.params["error"] == "access_denied" and out.params["state"] == "st-9"
    assert out.params["iss"] == idp.url
    # the request is over: a second cancel (a double click) is sent the same answer, not an error page
    again = rp.follow(f"{idp.url}/authorize/cancel", "POST", {"rid": rid, "csrf_token": csrf_from(html)})
    assert again.location == out.location


def test_cancel_needs_csrf_and_the_request_id(idp, user, rp):
    res = rp.follow(rp.authorize_url(state="st"))
    html = res.response.text
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    assert rp.follow(f"{idp.url}/authorize/cancel", "POST", {"rid": rid}).response.status_code == 400
    r = rp.follow(f"{idp.url}/authorize/cancel", "POST", {"rid": "other", "csrf_token": csrf_from(html)})
    assert r.response.status_code == 400 and r.location is None


def test_cancel_in_form_post_mode(idp, user, rp):
    res = rp.follow(rp.authorize_url(state="st", response_mode="form_post"))
    html = res.response.text
    rid = re.search(r'name="rid" value="([^"]+)"', html).group(1)
    out = rp.follow(f"{idp.url}/authorize/cancel", "POST", {"rid": rid, "csrf_token": csrf_from(html)})
    assert 'name="error" value="access_denied"' in out.response.text
    assert f'action="{RP_CALLBACK}"' in out.response.text


@pytest.mark.parametrize("logo", ["https://cdn.example;script-src/l.png", "https://cdn.example;default-src/l.png",
                                  "https://cdn.example'/l.png", "https://cdn.example,x/l.png"])
def test_logo_origin_cannot_end_the_csp_directive(idp, logo):
    """A logo's origin goes into the sign-in page's CSP ``img-src``: an authority with ``;`` ended that directive
    and started another, and an empty ``script-src`` before the page's own turned off every script of the
    sign-in pages (the face capture among them). Refused at registration (dynamic registration too); a client
    stored with such a logo before is shown without it, the CSP unchanged."""
    from idp.oauth.clients import ClientError, create_client, invalidate
    with pytest.raises(ClientError):
        create_client(idp.db, idp.config, "X", [RP_CALLBACK], logo_uri=logo)
    from .conftest import register_client
    doc, secret = register_client(idp.db, idp.config, "Old client", [RP_CALLBACK])
    idp.db.clients.update_one({"_id": doc["client_id"]}, {"$set": {"logo_uri": logo}})  # stored before the check
    invalidate(idp.db, doc["client_id"])
    res = RP(idp, doc["client_id"], secret).follow(RP(idp, doc["client_id"], secret).authorize_url())
    assert res.response.status_code == 200
    csp = res.response.headers["Content-Security-Policy"]
    directives = [d.split()[0] for d in csp.split(";") if d.split()]
    assert len(directives) == len(set(directives)), csp
    assert "script-src 'self'" in csp and "cdn.example" not in csp, csp
    assert "cdn.example" not in res.response.text
