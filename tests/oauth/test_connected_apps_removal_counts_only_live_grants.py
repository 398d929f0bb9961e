""""Remove access" on the Connected apps page reports (and audits) an application as removed only when something
live ended: its consent, or a token family neither expired nor revoked (the ones the page lists an application
for). A family that had only expired counted too, so an application the page no longer listed (removed from a page
opened earlier) came back as "Access removed" and was audited as revoked. Expired families are still revoked,
uncounted. Real server over HTTP, real database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .conftest import RP, csrf_from, register_client


def _remove(rp, idp, client_id, page):
    r = rp.browser.post(f"{idp.url}/account/apps/{client_id}/remove", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)
    assert r.status_code == 302, r.text
    return rp.browser.get(f"{idp.url}/account/apps")


def _expire(db, client_id):
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    db.tokens.update_many({"client_id": client_id}, {"$set": {"access_expires": past, "refresh_expires": past}})


def test_removing_an_app_whose_grants_have_all_expired_reports_nothing_removed(idp, user):
    doc, secret = register_client(idp.db, idp.config, "First party", scope="openid offline_access",
                                  skip_consent=True)
    rp = RP(idp, doc["client_id"], secret)
    rp.tokens(scope="openid offline_access")
    stale = rp.browser.get(f"{idp.url}/account/apps")  # a page opened while the grant was live
    assert "First party" in stale.text
    _expire(idp.db, doc["client_id"])
    assert "First party" not in rp.browser.get(f"{idp.url}/account/apps").text
    page = _remove(rp, idp, doc["client_id"], stale)
    assert "Access removed" not in page.text and "First party" not in page.text
    assert idp.db.audit_log.count_documents({"event": "oauth.consent_revoked"}) == 0
    assert idp.db.tokens.count_documents({"revoked": False}) == 0  # still ended, as any of its families


def test_removing_an_app_ends_its_live_grant_beside_an_expired_one(idp, user):
    doc, secret = register_client(idp.db, idp.config, "First party", scope="openid offline_access",
                                  skip_consent=True)
    rp = RP(idp, doc["client_id"], secret)
    rp.tokens(scope="openid offline_access")
    _expire(idp.db, doc["client_id"])
    live = rp.tokens(scope="openid offline_access")
    listed = rp.browser.get(f"{idp.url}/account/apps")
    assert "First party" in listed.text
    page = _remove(rp, idp, doc["client_id"], listed)
    assert "Access removed" in page.text and "First party" not in page.text
    assert rp.refresh(live["refresh_token"]).json()["error"] == "invalid_grant"
    assert idp.db.audit_log.count_documents({"event": "oauth.consent_revoked"}) == 1
