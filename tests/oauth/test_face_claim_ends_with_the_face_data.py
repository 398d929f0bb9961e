"""A face check stands only while the template it matched is stored. The owner deleting the face data (or
replacing it) on one device left every other session that had passed a face check with amr "face" for the rest of
its lifetime: silent (prompt=none) codes for a face-required app with amr ["pwd","face"], for an account with no
face template (found by a red team). Now such a session no longer counts the face (``faceweb.step.face_proof_stands``,
the sign-in flow's proof check): a face-required app gets no silent code, a face-optional one a password-only one.
Real server over HTTP, real database, real face engine on real photos (liveness off: still photos)."""
from __future__ import annotations

import pytest

from support.oidc import CALLBACK, PASSWORD, RelyingParty, UserAgent, csrf_from


def _signed_in_with_face(server, people, rp) -> UserAgent:
    """Alice enrolls and passes the face check for ``rp`` on a device of her own; the app gets its code."""
    from idp.faceweb.notice import NOTICE_VERSION
    b = UserAgent(server.url)
    page, _ = b.go(rp.authorize_url())
    page, _ = b.submit(page, "/login", {"username": "alice", "password": PASSWORD})
    if "/face/consent" in page.text:
        page, _ = b.submit(page, "/face/consent", {"consent": "yes", "notice_version": NOTICE_VERSION})
        assert b.capture(page, "enroll", people["alice"][:5])["ok"]
        page, _ = b.go("/face/continue")
    result = b.capture(page, "verify", people["alice"][5:8])
    assert result["ok"], result
    page, loc = b.go(result["redirect"])
    loc = loc or b.consent_and_code(page)
    assert loc and "code=" in loc, loc
    return b


def _silent(rp, agent: UserAgent):
    rp.browser = agent.s
    return rp.follow(rp.authorize_url(prompt="none"))


@pytest.mark.slow
def test_face_data_deleted_on_one_device_ends_the_face_claim_of_the_others(face_idp, people):
    from idp.accounts.users import create_user
    bank = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "Bank", [CALLBACK], face_policy="required",
                                 pkce=True, defaults={"scope": "openid", "nonce": "n"})
    shop = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "Shop", [CALLBACK], face_policy="optional",
                                 pkce=True, defaults={"scope": "openid", "nonce": "n"}, skip_consent=True)
    create_user(face_idp.db, "alice", "alice@example.org", PASSWORD)
    other = _signed_in_with_face(face_idp, people, bank)  # device 2 (a forgotten laptop, a stolen cookie)
    res = _silent(bank, other)
    assert res.location and "code" in res.params and bank.id_token_claims(res.params["code"])["amr"] == ["pwd", "face"]

    owner = _signed_in_with_face(face_idp, people, bank)  # device 1: the owner deletes her face data
    page, _ = owner.go("/account/face")
    r = owner.s.post(f"{face_idp.url}/account/face/delete", allow_redirects=False,
                     data={"csrf_token": csrf_from(page.text), "confirm": "yes", "password": PASSWORD})
    assert r.status_code == 302 and face_idp.db.face_templates.count_documents({}) == 0

    for agent in (other, owner):
        res = _silent(bank, agent)  # the face is required and no longer proven: no silent code
        assert res.location and res.params.get("error") in ("interaction_required", "login_required"), res.params
        assert "code" not in res.params
        res = _silent(shop, agent)  # a face-optional app: a password-only sign-in
        assert res.location and "code" in res.params, (res.location, res.response.text[:300])
        claims = shop.id_token_claims(res.params["code"])
        assert claims["amr"] == ["pwd"] and claims["acr"] != "urn:deepauth:acr:pwd+face", claims


@pytest.mark.slow
def test_a_template_saved_again_ends_the_face_claim_made_with_the_one_before(face_idp, people):
    """A new save of the template (a re-enrollment, here its stored date moved as a save moves it) ends the face
    claim of sessions that matched the one before; a face check against the stored one counts."""
    from idp.accounts.users import create_user
    bank = RelyingParty.register(face_idp, face_idp.db, face_idp.config, "Bank", [CALLBACK], face_policy="required",
                                 pkce=True, defaults={"scope": "openid", "nonce": "n"})
    create_user(face_idp.db, "alice", "alice@example.org", PASSWORD)
    other = _signed_in_with_face(face_idp, people, bank)
    assert "code" in _silent(bank, other).params
    # the template replaced (as a re-enrollment saves it): a new save of the same user's template
    saved = face_idp.db.face_templates.find_one()["updated_at"]
    assert face_idp.db.face_templates.update_one({}, {"$set": {"updated_at": saved.replace(year=saved.year + 1)}})
    res = _silent(bank, other)
    assert res.params.get("error") in ("interaction_required", "login_required") and "code" not in res.params
    again = _signed_in_with_face(face_idp, people, bank)  # a face check against the stored template counts
    assert "code" in _silent(bank, again).params
