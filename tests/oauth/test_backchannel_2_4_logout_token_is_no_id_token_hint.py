"""OpenID Connect Back-Channel Logout 1.0 section 2.4 (and RFC 8725 3.11, explicit typing): a logout token is
signed with the ID-token keys and names the user (``sub``), but it is typed ``logout+jwt`` and carries
``events`` so that it cannot be taken for an ID token. Every client with a back-channel URI receives one per
sign-out; the provider read it as an ID token wherever a hint is read: ``/end-session`` signed the user out
with no confirmation and redirected to the client's post-logout URI, and ``prompt=none`` answered with a silent
code. A logout token is no ID token hint: the sign-out page asks the user, ``prompt=none`` is login_required."""
from __future__ import annotations

from .conftest import RP, RP_CALLBACK, RP_LOGGED_OUT, csrf_from
from .test_backchannel_logout import Receiver, verify_logout_token


def test_a_logout_token_is_not_read_as_an_id_token_hint(idp, user):
    from .conftest import register_client
    receiver = Receiver()
    try:
        doc, secret = register_client(idp.db, idp.config, "BC RP", [RP_CALLBACK], scope="openid profile",
                                      post_logout_redirect_uris=[RP_LOGGED_OUT],
                                      backchannel_logout_uri=receiver.url, backchannel_logout_session_required=True)
        rp = RP(idp, doc["client_id"], secret)
        rp.tokens(scope="openid profile")
        page = rp.browser.get(f"{idp.url}/account")
        assert rp.browser.post(f"{idp.url}/account/sign-out", data={"csrf_token": csrf_from(page.text)},
                               allow_redirects=False).status_code == 302
        [logout_token] = receiver.wait(1)
    finally:
        receiver.stop()
    assert verify_logout_token(idp, logout_token, rp.client_id)["sub"] == user["_id"]

    # the user signs in again in the same browser
    id_token = rp.tokens(scope="openid profile")["id_token"]
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1

    # prompt=none: a logout token names nobody the relying party expects
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=logout_token, scope="openid profile"))
    assert res.params.get("error") == "login_required" and "code" not in res.params, res.params

    # RP-initiated logout: no sign-out and no redirect without the user's confirmation
    res = rp.follow(f"{idp.url}/end-session?id_token_hint={logout_token}"
                    f"&post_logout_redirect_uri={RP_LOGGED_OUT}&state=s1")
    assert res.location is None and 'name="confirm"' in res.response.text, (res.location, res.response.status_code)
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 1

    # the ID token of the current sign-in still reads as a hint
    res = rp.follow(rp.authorize_url(prompt="none", id_token_hint=id_token, scope="openid profile"))
    assert "code" in res.params, res.params
    res = rp.follow(f"{idp.url}/end-session?id_token_hint={id_token}&post_logout_redirect_uri={RP_LOGGED_OUT}")
    assert res.location == RP_LOGGED_OUT
    assert idp.db.sessions.count_documents({"data.auth.uid": user["_id"]}) == 0
