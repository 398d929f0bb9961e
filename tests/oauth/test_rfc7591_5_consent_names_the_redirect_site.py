"""RFC 7591 §5: a dynamically registered client's name and logo are self-asserted, so a registrant can take those
of an application the users trust ("Payroll", its logo) with its own redirect URI. The consent page - the user's one
decision before a code leaves for that URI - named only the application, so it looked exactly like the trusted
one's and sent the code (with email, phone and offline access) to the registrant's site. The page names the site
the answer goes to, and for a client not registered by the operator says that its developer registered it."""
from __future__ import annotations

import re
from html import unescape

import pytest
import requests

from oauth.conftest import PASSWORD, RP, RP_CALLBACK, register_client
from oauth.conftest import cheap_password_hashing, make_server  # noqa: F401  (fixtures)

TOKEN = "initial-access-token-0123456789abcdef"
EVIL = "https://evil.example/payroll/callback"
LOGO = "https://cdn.example/payroll.png"
SCOPE = "openid profile email phone offline_access"


@pytest.fixture
def idp(make_server):
    from idp.accounts.users import create_user
    server = make_server(registration_access_token=TOKEN)
    create_user(server.db, "alice", "alice@example.org", PASSWORD, phone="+44 20 7946 0000")
    return server


def _consent_text(rp: RP) -> str:
    res = rp.follow(rp.authorize_url(scope=SCOPE, prompt="consent"))
    res = rp.login(res)
    html = res.response.text
    assert '/authorize/consent"' in html, html[:500]
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", main)))


def test_consent_for_a_self_registered_look_alike_names_its_site(idp):
    register_client(idp.db, idp.config, "Payroll", [RP_CALLBACK], scope=SCOPE, logo_uri=LOGO)
    r = requests.post(f"{idp.url}/oauth/register", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"client_name": "Payroll", "logo_uri": LOGO, "redirect_uris": [EVIL], "scope": SCOPE})
    assert r.status_code == 201, r.text
    from idp.oauth.clients import update_client
    update_client(idp.db, r.json()["client_id"], face_policy="optional")  # face sign-in is off on this server
    look_alike = RP(idp, r.json()["client_id"], r.json()["client_secret"], redirect_uri=EVIL)

    text = _consent_text(look_alike)
    assert "Allow Payroll to use your account?" in text
    assert "https://evil.example" in text, text  # where the code goes, before the user allows it
    assert "registered by its own developer" in text, text


def test_consent_for_an_operator_client_names_its_site_without_the_warning(idp):
    doc, secret = register_client(idp.db, idp.config, "Payroll", [RP_CALLBACK], scope=SCOPE, logo_uri=LOGO)
    text = _consent_text(RP(idp, doc["client_id"], secret))
    assert "https://rp.example" in text, text
    assert "registered by its own developer" not in text, text
