"""An application registered to skip the consent page (a first-party app, the operator's decision) gets offline
access without a consent record. The Connected apps page listed consents only, so the user could not end its
30-day refresh token there (only "Sign out everywhere" or a password change, which end every other app too),
although the consent page says offline access lasts until removed there (found by a red team). The page now
lists every client holding a live grant of the account too, and removing it ends that grant. Real server over
HTTP, real database."""
from __future__ import annotations

from .conftest import RP, csrf_from, register_client


def test_an_app_that_skipped_the_consent_page_is_listed_and_removable(idp, user):
    doc, secret = register_client(idp.db, idp.config, "First party", scope="openid profile offline_access",
                                  skip_consent=True)
    rp = RP(idp, doc["client_id"], secret)
    tok = rp.tokens(scope="openid profile offline_access")
    assert "refresh_token" in tok and idp.db.consents.count_documents({}) == 0
    page = rp.browser.get(f"{idp.url}/account/apps")
    assert f'data-client-id="{doc["client_id"]}"' in page.text and "First party" in page.text
    assert "Signed in without asking you" in page.text
    r = rp.browser.post(f"{idp.url}/account/apps/{doc['client_id']}/remove",
                        data={"csrf_token": csrf_from(page.text)}, allow_redirects=False)
    assert r.status_code == 302
    assert rp.refresh(tok["refresh_token"]).status_code == 400
    page = rp.browser.get(f"{idp.url}/account/apps")
    assert "First party" not in page.text and "Access removed" in page.text
    assert idp.db.audit_log.count_documents({"event": "oauth.consent_revoked", "client_id": doc["client_id"]}) == 1
