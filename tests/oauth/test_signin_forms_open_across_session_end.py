"""A sign-in form (password, consent) left open while its session ends - the anonymous session expires, or
the user signs out in another tab - keeps the relying party's request: posted, it uses nothing it carries
(the CSRF check fails, as it must: the form belongs to an ended session), but the browser is sent back into the
same authorization request (restarted at the authorization endpoint, which checks it again), with a message,
instead of to a "form expired" dead end that lost the application. A request already answered is not
restarted, nor one older than a sign-in lasts, nor one the form did not get from this server."""
from __future__ import annotations

import re
import time

from support.html_forms import form_data, forms

from .conftest import PASSWORD, RP, RP_CALLBACK, csrf_from, register_client

RESTARTED = "was not used"  # in the message shown on the restarted sign-in page


def _form(html: str, action: str, **values) -> dict:
    (form,) = [f for f in forms(html) if f["action"] == action and f["method"] == "post"]
    return form_data(form, **values)


def _end_every_session(idp) -> None:
    """What the passing of the (anonymous) session's lifetime does: its document no longer opens."""
    assert idp.db.sessions.delete_many({}).deleted_count >= 1


def _signed_out_elsewhere(idp, rp) -> None:
    """The user signs out in another tab of the same browser."""
    account = rp.browser.get(idp.url + "/account", allow_redirects=False)
    assert account.status_code == 200, account.status_code
    r = rp.browser.post(idp.url + "/account/sign-out", data={"csrf_token": csrf_from(account.text)},
                        allow_redirects=False)
    assert r.status_code == 302


def test_a_login_form_posted_after_its_session_expired_restarts_the_apps_request(idp, rp, user):
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    page = rp.follow(url)
    assert "/login" in page.response.url and "Example RP" in page.response.text
    _end_every_session(idp)

    again = rp.follow(idp.url + "/login", "POST", _form(page.response.text, "/login", username="alice",
                                                         password=PASSWORD))
    assert again.location is None and "/login" in again.response.url, (again.response.status_code,
                                                                        again.response.text[:300])
    assert "Example RP" in again.response.text and RESTARTED in again.response.text
    assert user["_id"] not in str(list(idp.db.sessions.find({}, {"data.auth": 1})))  # nothing posted was used
    done = rp.login(again)
    if done.location is None:
        done = rp.consent(done)
    assert done.location and done.location.startswith(RP_CALLBACK + "?"), done.response.text[:300]
    assert done.params["state"] == state and "code" in done.params


def test_a_consent_form_posted_after_a_sign_out_in_another_tab_restarts_the_request_and_asks_again(idp, rp, user):
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    consent_page = rp.login(rp.follow(url))
    assert '/authorize/consent"' in consent_page.response.text
    _signed_out_elsewhere(idp, rp)

    again = rp.follow(idp.url + "/authorize/consent", "POST",
                      _form(consent_page.response.text, "/authorize/consent", decision="allow"))
    assert again.location is None and "/login" in again.response.url, (again.response.status_code,
                                                                        again.response.text[:300])
    assert "Example RP" in again.response.text and RESTARTED in again.response.text
    assert idp.db.consents.count_documents({}) == 0  # the Allow of the ended session was not used
    asked = rp.login(again)
    assert asked.location is None and '/authorize/consent"' in asked.response.text  # asked again
    done = rp.consent(asked)
    assert done.location.startswith(RP_CALLBACK + "?") and done.params["state"] == state


def test_a_request_too_large_to_restart_by_url_ends_on_a_page_not_on_the_servers_400(idp, rp, user):
    """A request that (nearly) filled the server's request line: the restart link of its ended session
    (``/authorize/restart?signin_request=...``, the request signed) is longer than the server accepts
    (``idp.parsing.MAX_REQUEST_LINE``; longer is gunicorn's bare 400 before the app), so the page says to start
    again from the application instead of sending the browser to a URL that fails."""
    import secrets

    from idp.parsing import fits_request_line
    url = rp.authorize_url(state=secrets.token_urlsafe(5950))
    assert fits_request_line(url[len(idp.url):])  # the request itself reached the server
    page = rp.follow(url)
    assert "/login" in page.response.url and "Example RP" in page.response.text, page.response.text[:300]
    _end_every_session(idp)
    r = rp.browser.post(idp.url + "/login", data=_form(page.response.text, "/login", username="alice",
                                                       password=PASSWORD), allow_redirects=False)
    if r.status_code in (302, 303):
        assert fits_request_line(r.headers["Location"]), len(r.headers["Location"])
        r = rp.browser.get(idp.url + r.headers["Location"], allow_redirects=False)
        if r.status_code == 302:
            assert fits_request_line(r.headers["Location"]), len(r.headers["Location"])
    assert r.status_code == 400 and "Start again from the application" in r.text, (r.status_code, r.text[:300])
    assert idp.db.auth_codes.count_documents({}) == 0


def test_the_cancel_button_of_an_ended_session_restarts_the_request_too(idp, rp, user):
    page = rp.follow(rp.authorize_url())
    _end_every_session(idp)
    again = rp.follow(idp.url + "/authorize/cancel", "POST", _form(page.response.text, "/authorize/cancel"))
    assert again.location is None and "/login" in again.response.url and "Example RP" in again.response.text


def test_an_answered_request_is_not_restarted(idp, rp, user):
    consent_page = rp.login(rp.follow(rp.authorize_url()))
    fields = _form(consent_page.response.text, "/authorize/consent", decision="allow")
    done = rp.consent(consent_page)
    assert done.location.startswith(RP_CALLBACK + "?")
    _signed_out_elsewhere(idp, rp)
    again = rp.follow(idp.url + "/authorize/consent", "POST", fields)
    assert again.location is None and again.response.status_code == 400 and "/login" not in again.response.url
    assert "no longer active" in again.response.text


def test_a_form_whose_request_was_not_made_here_is_not_restarted(idp, rp, user):
    page = rp.follow(rp.authorize_url())
    fields = _form(page.response.text, "/login", username="alice", password=PASSWORD)
    names = [n for n in fields if n not in ("csrf_token", "username", "password", "submit")]
    assert names, "the form carries its request"
    _end_every_session(idp)
    for name in names:
        forged = dict(fields, **{name: fields[name][:-2] + ("AA" if not fields[name].endswith("AA") else "BB")})
        r = rp.browser.post(idp.url + "/login", data=forged, allow_redirects=False)
        assert r.status_code == 400 and "Form expired" in r.text, (r.status_code, r.headers.get("Location"))


def test_a_request_older_than_a_sign_in_lasts_is_not_restarted(make_server):
    from idp.accounts.users import create_user
    idp = make_server(session_lifetime_s=2)
    create_user(idp.db, "alice", "alice@example.org", PASSWORD)
    doc, secret = register_client(idp.db, idp.config, "Example RP", [RP_CALLBACK])
    rp = RP(idp, doc["client_id"], secret)
    page = rp.follow(rp.authorize_url())
    time.sleep(3)
    r = rp.browser.post(idp.url + "/login", data=_form(page.response.text, "/login", username="alice",
                                                       password=PASSWORD), allow_redirects=True)
    assert r.status_code == 400 and "Form expired" in r.text and not r.history


def test_a_login_form_completes_the_request_it_named_when_another_tab_started_another(idp, rp, user):
    """One authorization request is pending per session: a second application's request in another tab
    replaced it, and the first tab's sign-in page, naming the first application, went on to the second."""
    other_doc, other_secret = register_client(idp.db, idp.config, "Other App", [RP_CALLBACK])
    other = RP(idp, other_doc["client_id"], other_secret)
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    first = rp.follow(url)
    assert "Example RP" in first.response.text
    other.browser = rp.browser  # the same browser, another tab
    second = other.follow(other.authorize_url())
    assert "Other App" in second.response.text

    done = rp.follow(idp.url + "/login", "POST", _form(first.response.text, "/login", username="alice",
                                                        password=PASSWORD))
    if done.location is None:
        assert "Other App" not in done.response.text and "Example RP" in done.response.text
        done = rp.consent(done)
    assert done.params.get("state") == state and done.params.get("code")
    assert [c["client_id"] for c in idp.db.auth_codes.find({})] == [rp.client_id]


def test_the_failed_post_itself_writes_no_session(idp, rp, user):
    """A cross-site post carries no SameSite=Lax cookie: were the failed post to store a session (the restart's
    message), its cookie would replace the browser's signed-in one. Only the GET it is sent to writes."""
    import requests
    page = rp.follow(rp.authorize_url())
    r = requests.post(idp.url + "/login", data=_form(page.response.text, "/login", username="alice",
                                                      password="whatever"), allow_redirects=False)
    assert r.status_code == 303 and "/authorize/restart?" in r.headers["Location"]
    assert "Set-Cookie" not in r.headers


def test_a_restarted_request_once_answered_is_not_restarted_again(idp, rp, user):
    """The restart starts the same request again, under the same id: once that is answered (a code went to the
    application), the form of the ended session restarts nothing more - before, each post of it started the
    request anew, and a second code went out for the same request (the same ``state`` and ``nonce``)."""
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    consent_page = rp.login(rp.follow(url))
    fields = _form(consent_page.response.text, "/authorize/consent", decision="allow")
    _signed_out_elsewhere(idp, rp)

    again = rp.follow(idp.url + "/authorize/consent", "POST", fields)
    assert RESTARTED in again.response.text
    done = rp.consent(rp.login(again))
    assert done.params["state"] == state and "code" in done.params
    assert idp.db.auth_codes.count_documents({}) == 1

    replayed = rp.follow(idp.url + "/authorize/consent", "POST", fields)  # still signed in, consent on record
    assert replayed.location is None and replayed.response.status_code == 400, replayed.location
    assert "no longer active" in replayed.response.text
    assert idp.db.auth_codes.count_documents({}) == 1


def test_a_restart_followed_twice_keeps_the_request_pending(idp, rp, user):
    """A form of an ended session posted twice (a double click, a second tab): both land on the same request."""
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    page = rp.follow(url)
    fields = _form(page.response.text, "/login", username="alice", password=PASSWORD)
    _end_every_session(idp)
    rp.follow(idp.url + "/login", "POST", fields)
    again = rp.follow(idp.url + "/login", "POST", fields)
    assert RESTARTED in again.response.text and "Example RP" in again.response.text
    done = rp.login(again)
    if done.location is None:
        done = rp.consent(done)
    assert done.params["state"] == state and "code" in done.params


def test_a_login_form_of_a_request_answered_meanwhile_ends_on_the_account_pages(idp, rp, user):
    """The same request's sign-in page open twice: signed in from one, it was answered (a code); the other, posted
    in the same session, signs in to the account pages, not into a request that can only say it is over."""
    url = rp.authorize_url()
    page = rp.follow(url)
    fields = _form(page.response.text, "/login", username="alice", password=PASSWORD)
    done = rp.login(page)
    if done.location is None:
        done = rp.consent(done)
    assert "code" in done.params
    r = rp.browser.post(idp.url + "/login", data=fields, allow_redirects=False)
    assert r.status_code == 302 and "/authorize" not in r.headers["Location"], r.headers.get("Location")
    assert idp.db.auth_codes.count_documents({}) == 1


def test_a_registration_form_completes_the_request_it_named_when_another_tab_started_another(idp, rp):
    other_doc, other_secret = register_client(idp.db, idp.config, "Other App", [RP_CALLBACK])
    other = RP(idp, other_doc["client_id"], other_secret)
    url = rp.authorize_url()
    state = re.search(r"state=([^&]+)", url).group(1)
    rp.follow(url)
    register_page = rp.browser.get(idp.url + "/register")
    assert 'name="signin_request"' in register_page.text
    other.browser = rp.browser  # the same browser, another tab
    assert "Other App" in other.follow(other.authorize_url()).response.text

    done = rp.follow(idp.url + "/register", "POST", _form(
        register_page.text, "/register", name="Carol", username="carol", email="carol@example.org",
        password=PASSWORD, confirm=PASSWORD))
    if done.location is None:
        assert "Other App" not in done.response.text and "Example RP" in done.response.text, done.response.text[:300]
        done = rp.consent(done)
    assert done.params.get("state") == state and done.params.get("code")
    assert [c["client_id"] for c in idp.db.auth_codes.find({})] == [rp.client_id]
