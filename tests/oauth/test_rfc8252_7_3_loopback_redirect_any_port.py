"""RFC 8252 §7.3 (native apps, loopback interface redirection), RFC 9700 §4.1.3: redirect URIs are compared
exactly, except that "the authorization server MUST allow any port to be specified at the time of the request for
loopback IP redirect URIs" - a native app listens on a port the operating system gives it at that moment, so it
cannot register it. A public client registered with ``http://127.0.0.1/callback`` was refused (an error page) for
``http://127.0.0.1:53123/callback``. Only the port may differ, only for http to a loopback host, only for a
public client (a confidential one is a web server that knows its port); the code is still bound to the exact URI
the request used."""
from __future__ import annotations

import requests

from .conftest import RP, register_client

REGISTERED = "http://127.0.0.1/callback"
EPHEMERAL = "http://127.0.0.1:53123/callback"


def _native_app(idp):
    doc, _ = register_client(idp.db, idp.config, "Native app", [REGISTERED, "http://[::1]:8080/cb"], public=True,
                             scope="openid profile")
    return doc


def test_rfc8252_7_3_any_port_on_a_loopback_redirect_uri(idp, user):
    doc = _native_app(idp)
    app = RP(idp, doc["client_id"], None, redirect_uri=EPHEMERAL, defaults={"scope": "openid profile"})
    res, verifier = app.sign_in_for_code(state="n1")
    assert res.location and res.location.startswith(EPHEMERAL + "?"), (res.location, res.response.text[:300])
    assert res.params["state"] == "n1" and res.params["code"]
    # the code is bound to the URI the request used, port included
    other_port = app.token(grant_type="authorization_code", code=res.params["code"], code_verifier=verifier,
                           redirect_uri="http://127.0.0.1:40000/callback")
    assert other_port.status_code == 400 and other_port.json()["error"] == "invalid_grant", other_port.text
    r = app.redeem(res.params["code"], verifier)
    assert r.status_code == 200 and r.json()["id_token"], r.text
    # IPv6 loopback, registered with a port: another port is allowed too
    v6 = RP(idp, doc["client_id"], None, redirect_uri="http://[::1]:49152/cb", defaults={"scope": "openid profile"})
    res, verifier = v6.sign_in_for_code()
    assert res.location and res.location.startswith("http://[::1]:49152/cb?") and res.params["code"], res.location


def test_rfc8252_7_3_only_the_port_and_only_on_loopback(idp, user):
    doc = _native_app(idp)
    https_doc, _ = register_client(idp.db, idp.config, "Web", ["https://rp.example/callback"])
    # a confidential client (a web server on this machine knows its port): another port is another program
    dev_doc, _ = register_client(idp.db, idp.config, "Dev web", [REGISTERED])
    for client_id, uri in ((doc["client_id"], "http://127.0.0.1:53123/other"),       # another path
                           (doc["client_id"], "http://127.0.0.1:53123/callback?x=1"),  # a query added
                           (doc["client_id"], "https://127.0.0.1:53123/callback"),     # another scheme
                           (doc["client_id"], "http://127.0.0.2:53123/callback"),      # another host
                           (doc["client_id"], "http://localhost:53123/callback"),      # another host name
                           (doc["client_id"], "http://a@127.0.0.1:53123/callback"),    # user info
                           (doc["client_id"], "http://127.0.0.1:99999/callback"),      # not a port
                           (https_doc["client_id"], "https://rp.example:8443/callback"),  # not loopback
                           (dev_doc["client_id"], EPHEMERAL)):  # not a public client
        app = RP(idp, client_id, None, redirect_uri=uri, defaults={"scope": "openid profile"}, pkce=True)
        r = requests.get(app.authorize_url(), allow_redirects=False)
        assert r.status_code == 400 and "Location" not in r.headers, (uri, r.status_code, r.headers.get("Location"))
