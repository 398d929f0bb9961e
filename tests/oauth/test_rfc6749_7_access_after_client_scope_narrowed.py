"""RFC 6749 §7 / RFC 7662 §2.2: a token is honoured for at most what its client may hold now. When an operator
narrows a client's allowed scopes, the access tokens it already holds are narrowed at once, wherever one is
used: the userinfo endpoint answers only the claims of the scopes left, and introspection names only those
(``Token.get_scope``: the scope issued, limited to the client as registered now). A token left with nothing
it may hold - a user's token without ``openid``, a client's own token without any of its scopes - is no longer
active (userinfo: 401 invalid_token; introspection: ``active: false``), and so is a refresh token whose grant
its next refresh would revoke (no ``offline_access``) and a client's own token once the client may no longer use
the client_credentials grant (a refresh token likewise, the refresh_token grant). The sibling rule for refreshes is in
test_rfc6749_6_refresh_after_client_scope_narrowed.py."""
from __future__ import annotations

import requests

from idp.oauth.clients import create_client, invalidate, update_client


def _userinfo(idp, access_token: str) -> requests.Response:
    return requests.get(f"{idp.url}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def test_access_token_issued_before_the_client_lost_a_scope_is_narrowed_at_once(idp, user, rp):
    tok = rp.tokens(scope="openid profile email phone offline_access")
    before = _userinfo(idp, tok["access_token"]).json()
    assert before["email"] == "alice@example.org" and before["phone_number"]
    update_client(idp.db, rp.client_id, scope="openid profile phone offline_access")  # the operator drops "email"

    r = _userinfo(idp, tok["access_token"])  # the same, unexpired access token
    assert r.status_code == 200, r.text
    assert "email" not in r.json() and "email_verified" not in r.json(), r.json()
    assert r.json()["phone_number"] and r.json()["preferred_username"] == "alice"
    assert rp.introspect(tok["access_token"])["scope"].split() == ["openid", "profile", "phone", "offline_access"]
    assert rp.introspect(tok["refresh_token"])["scope"].split() == ["openid", "profile", "phone", "offline_access"]
    # a resource server allowed to introspect others' tokens is told the same
    auditor = rp.register(idp, idp.db, idp.config, "Resource server", can_introspect=True)
    assert auditor.introspect(tok["access_token"])["scope"].split() == ["openid", "profile", "phone",
                                                                        "offline_access"]
    # limited at each use, not rewritten: widened again, the unexpired access token may use what it was issued
    # with (a refresh meanwhile would have narrowed the grant for good: the sibling test)
    update_client(idp.db, rp.client_id, scope="openid profile email phone offline_access")
    assert _userinfo(idp, tok["access_token"]).json()["email"] == "alice@example.org"


def test_offline_grant_whose_client_lost_offline_access_ends(idp, user, rp):
    """A family granted ``offline_access`` outlives its sign-in (a sign-out keeps it), and nothing tells its
    access token apart from one of a sign-in still alive: once the client may no longer hold ``offline_access``
    it is inactive, as its refresh token (whose next refresh would revoke the grant)."""
    tok = rp.tokens(scope="openid profile offline_access")
    update_client(idp.db, rp.client_id, scope="openid profile email")
    r = _userinfo(idp, tok["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    assert rp.introspect(tok["access_token"]) == {"active": False}
    assert rp.introspect(tok["refresh_token"]) == {"active": False}
    online = rp.tokens(scope="openid profile")  # a grant without offline_access is only narrowed
    assert _userinfo(idp, online["access_token"]).status_code == 200


def test_access_token_left_without_openid_is_refused(idp, user, rp):
    """The clients service always keeps ``openid`` in a client's scopes; a client document without it (edited
    in the database, or older data) leaves its users' tokens nothing to hold: they fail closed."""
    tok = rp.tokens(scope="openid profile email")
    assert _userinfo(idp, tok["access_token"]).status_code == 200
    idp.db.clients.update_one({"_id": rp.client_id}, {"$set": {"scope": "profile email"}})
    invalidate(idp.db, rp.client_id)
    r = _userinfo(idp, tok["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert rp.introspect(tok["access_token"]) == {"active": False}


def test_client_credentials_token_is_narrowed_and_ends_with_its_last_scope(idp):
    doc, secret = create_client(idp.db, idp.config, "Batch job", [], scope="openid email phone",
                                grant_types=["client_credentials"])
    auth = (doc["client_id"], secret)
    tok = requests.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth).json()
    assert tok["scope"] == "email phone"

    def introspect():
        return requests.post(f"{idp.url}/oauth/introspect", data={"token": tok["access_token"]}, auth=auth).json()
    update_client(idp.db, doc["client_id"], scope="openid phone")
    assert introspect()["scope"] == "phone"
    update_client(idp.db, doc["client_id"], scope="openid")
    assert introspect() == {"active": False}


def test_widened_client_does_not_widen_its_tokens(idp, user, rp):
    tok = rp.tokens(scope="openid profile")
    update_client(idp.db, rp.client_id, scope="openid profile email phone offline_access")
    assert "email" not in _userinfo(idp, tok["access_token"]).json()
    assert rp.introspect(tok["access_token"])["scope"].split() == ["openid", "profile"]


def test_client_credentials_token_ends_when_its_client_loses_the_grant(idp):
    doc, secret = create_client(idp.db, idp.config, "Batch job", ["https://batch.example/cb"], scope="openid email",
                                grant_types=["client_credentials", "authorization_code"])
    auth = (doc["client_id"], secret)
    tok = requests.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth).json()

    def introspect():
        return requests.post(f"{idp.url}/oauth/introspect", data={"token": tok["access_token"]}, auth=auth).json()
    assert introspect()["scope"] == "email"
    update_client(idp.db, doc["client_id"], grant_types=["authorization_code"])  # the operator takes the grant away
    assert introspect() == {"active": False}


def test_refresh_token_is_inactive_while_its_client_may_not_use_the_refresh_grant(idp, user, rp):
    tok = rp.tokens(scope="openid profile offline_access")
    assert rp.introspect(tok["refresh_token"])["active"] is True
    update_client(idp.db, rp.client_id, grant_types=["authorization_code"])  # the operator takes the grant away
    assert rp.introspect(tok["refresh_token"]) == {"active": False}
    assert rp.introspect(tok["access_token"])["active"] is True  # the access token is not the refresh grant's


def test_client_credentials_token_without_scope_ends_when_its_client_loses_the_grant(idp):
    """A client registered for nothing but ``openid`` gets a client_credentials token with no scope at all; it
    ends with the grant all the same (there is no scope left to tell it by)."""
    doc, secret = create_client(idp.db, idp.config, "Batch job", ["https://batch.example/cb"], scope="openid",
                                grant_types=["client_credentials", "authorization_code"])
    auth = (doc["client_id"], secret)
    tok = requests.post(f"{idp.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth).json()
    assert "access_token" in tok and not tok.get("scope"), tok

    def introspect():
        return requests.post(f"{idp.url}/oauth/introspect", data={"token": tok["access_token"]}, auth=auth).json()
    assert introspect()["active"] is True
    update_client(idp.db, doc["client_id"], grant_types=["authorization_code"])  # the operator takes the grant away
    assert introspect() == {"active": False}


def test_offline_grant_of_a_client_without_offline_access_ends_with_the_sign_in(idp, user, rp):
    from .conftest import csrf_from
    tok = rp.tokens(scope="openid profile offline_access")
    update_client(idp.db, rp.client_id, scope="openid profile email")
    page = rp.browser.get(f"{idp.url}/account")
    r = rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)
    assert r.status_code == 302
    assert _userinfo(idp, tok["access_token"]).status_code == 401  # no online token outlives its sign-in


def test_offline_grant_refreshed_to_a_narrower_scope_ends_when_its_client_lost_offline_access(idp, user, rp):
    """A refresh may ask for less than the grant (RFC 6749 §6), ``offline_access`` left out too: the access token
    it gives still serves the offline grant that a sign-out keeps. Once the client may no longer hold
    ``offline_access`` it is inactive like the grant's other tokens, whatever scope it was narrowed to (it was
    judged by the narrowed scope alone, and lived on for its hour after the sign-out)."""
    from .conftest import csrf_from
    tok = rp.tokens(scope="openid profile offline_access")
    r = rp.token(grant_type="refresh_token", refresh_token=tok["refresh_token"], scope="openid profile")
    assert r.status_code == 200 and r.json()["scope"] == "openid profile", r.text
    narrowed = r.json()
    page = rp.browser.get(f"{idp.url}/account")
    assert rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                           allow_redirects=False).status_code == 302
    assert _userinfo(idp, narrowed["access_token"]).status_code == 200  # an offline grant outlives the sign-in
    update_client(idp.db, rp.client_id, scope="openid profile email")  # the operator takes offline_access away
    r = _userinfo(idp, narrowed["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    assert rp.introspect(narrowed["access_token"]) == {"active": False}
    assert rp.introspect(narrowed["refresh_token"]) == {"active": False}


def test_user_access_token_ends_when_its_client_loses_the_authorization_code_grant(idp, user, rp):
    """A user's access token serves the authorization_code grant (a refresh needs that grant too): once the
    operator takes it away from the client, as a client's own token ends with the client_credentials grant."""
    tok = rp.tokens(scope="openid profile offline_access")
    assert _userinfo(idp, tok["access_token"]).status_code == 200
    update_client(idp.db, rp.client_id, grant_types=["client_credentials"])
    r = _userinfo(idp, tok["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.text
    assert rp.introspect(tok["access_token"]) == {"active": False}
    assert rp.introspect(tok["refresh_token"]) == {"active": False}
