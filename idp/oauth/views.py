"""HTTP endpoints of the provider (blueprint ``oauth``) and the user's "Connected apps" page."""
from __future__ import annotations

import logging
import secrets
import time
from collections import Counter

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from idp import get_config, get_db
from idp.parsing import fits_request_line
from idp.signin import (
    PendingRequest, account_chosen, answer_request, auth_state, begin_request, choose_account, clear_request, flow,
    follow_posted_request, pending_request, request_answer, request_fits,
)
from idp.signin.guards import login_required, signed_in_uid
from idp.web import bearer, error_response
from idp.web.api import ApiPath

from idp import audit
from . import clients as clients_service
from . import consents
from .models import UserRef

log = logging.getLogger("idp.oauth")
bp = Blueprint("oauth", __name__)

SCOPE_WORDS = {
    "openid": "Sign you in with your Deep Authenticator account (a private identifier for you)",
    "profile": "See your name and username",
    "email": "See your email address",
    "phone": "See your phone number",
    "offline_access": "Keep access to this information while you are not using the application "
                      "(until you remove it on your Connected apps page)",
}


def server():
    return current_app.extensions["oauth_server"]


# --- metadata ----------------------------------------------------------------------------------

@bp.get("/.well-known/oauth-authorization-server")  # (decorators apply bottom-up: url_for builds the OIDC path)
@bp.get("/.well-known/openid-configuration")
def discovery():
    """OpenID Connect Discovery 1.0 §4, and the same document at RFC 8414 §3's default well-known URI for OAuth
    clients that read only that one."""
    resp = jsonify(server().metadata())
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


@bp.get("/jwks.json")
def jwks():
    resp = jsonify(current_app.extensions["oauth_keys"].jwks())
    # the pre-publication period of new keys is computed from this lifetime (idp.oauth.keys)
    resp.headers["Cache-Control"] = f"public, max-age={get_config().jwks_max_age_s}"
    return resp


# --- authorization endpoint ------------------------------------------------------------------

RESPONSE_MODES = ("query", "form_post")


def _deliver(resp, args: dict | None, redirect_uri: str | None):
    """OAuth 2.0 Form Post Response Mode: when the request asked for ``response_mode=form_post``, an
    authorization response redirect to the client's (validated) redirect URI becomes an HTML page that
    POSTs the same parameters there. The page's own CSP allows exactly its one inline script (a fresh
    nonce) and form submission to the redirect URI's origin only."""
    fields = _form_fields(resp, args, redirect_uri)
    if fields is None:
        return resp
    nonce = secrets.token_urlsafe(16)
    # 'none' only for a URI stored before registration checked hosts (one whose host would break the CSP)
    form_action = clients_service.csp_origin(redirect_uri) or "'none'"
    page = current_app.make_response(render_template("oauth/form_post.html", action=redirect_uri, fields=fields,
                                                     nonce=nonce))
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'")
    page.headers["Cache-Control"] = "no-store"
    return page


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Error Code unmet_authentication_requirements (OpenID Foundation, final 2022;
    IANA OAuth Extensions Error registry): the provider cannot authenticate the user as the relying party
    requires."""
    error = "unmet_authentication_requirements"


def _form_fields(resp, args: dict | None, redirect_uri: str | None) -> list[tuple[str, str]] | None:
    """The parameters of the redirect ``resp`` to ``redirect_uri`` when the request asked for
    ``response_mode=form_post`` (the redirect URI's own query left out), else None."""
    if not args or args.get("response_mode") != "form_post" or not redirect_uri or resp.status_code != 302:
        return None
    location = resp.headers.get("Location", "")
    if not location.startswith(redirect_uri):
        return None
    from urllib.parse import parse_qsl, urlsplit
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    fields = parse_qsl(urlsplit(location).query, keep_blank_values=True)
    for pair in own:
        if pair in fields:
            fields.remove(pair)
    return fields


#: The errors that answer a ``prompt=none`` request needing interaction (OpenID Connect Core 3.1.2.6).
SILENT_ANSWERS = frozenset({"login_required", "interaction_required", "consent_required",
                            "account_selection_required"})


def _redirect_error(srv, oreq, error: OAuth2Error, *, answers_pending: bool = False):
    """Send an OAuth error back to the client when its redirect URI is validated, else show it here.

    Only the request the error answers ends: the session's pending authorization request (a sign-in
    half-finished in another tab) is forgotten when ``answers_pending`` (the error is about that request
    itself), never because another request failed - a cross-site ``prompt=none`` navigation, or any other
    refused request, leaves it to be finished.

    RFC 9700 4.11.2 (the authorization server as open redirector): the browser is sent to the redirect URI by
    itself only when it is trusted (:func:`_redirect_trusted`). Otherwise - a dynamically registered client,
    whose registrant chose the URI, that the user has not authorized - a page here says what went wrong and
    to which site its button leads, and the user decides whether to go there (with the same error response,
    in the request's response mode). Responses the user chose (Cancel, Deny) and codes are redirected as
    always, and so is the answer to ``prompt=none`` that interaction is needed (:data:`SILENT_ANSWERS`):
    OpenID Connect Core 3.1.2.6 makes it the response a relying party's silent sign-in waits for (in a
    hidden frame or a redirect no one watches), so a page there would hang every such client; it says no
    more than "sign in first", and the registrant could reach its own site without the IdP."""
    if not error.redirect_uri:
        return error_response(400, _describe(error))
    if answers_pending:
        clear_request()
    args = oreq.payload.data if oreq is not None and oreq.payload is not None else None
    resp = _error_redirect(srv, oreq, error)
    client = getattr(oreq, "client", None) or (
        srv.query_client(oreq.payload.client_id) if oreq is not None and oreq.payload is not None else None)
    silent = error.error in SILENT_ANSWERS and "none" in str((args or {}).get("prompt") or "").split()
    if silent or (client is not None and _redirect_trusted(client)):
        return _deliver(resp, args, error.redirect_uri)
    return _return_page(resp, args, error.redirect_uri, client, error)


def _redirect_trusted(client) -> bool:
    """Whether an error may be redirected to ``client`` without the user's say: an operator registered it
    (``clients.redirects_trusted``), or the account this browser signed in to has authorized it (a consent
    on record: the user chose this application before)."""
    if clients_service.redirects_trusted(client.doc):
        return True
    uid = auth_state().uid
    return bool(uid) and bool(consents.granted_scopes(get_db(), uid, client.client_id))


def _site_of(uri: str) -> str:
    """``scheme://host[:port]`` of a (validated) redirect URI: the site a button there leads to."""
    from urllib.parse import urlsplit
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def _return_page(resp, args: dict | None, redirect_uri: str, client, error: OAuth2Error):
    """The error page shown instead of the redirect ``resp`` to an untrusted redirect URI: the error, the
    application and the site the button goes to; the button carries the same response (a link, or for
    ``form_post`` a form the user submits). 400, never cached."""
    name = (client.doc.get("name") if client is not None else None) or "The application"
    page = current_app.make_response((render_template(
        "oauth/error_return.html", app_name=name, site=_site_of(redirect_uri),
        message=_describe(error), href=resp.headers.get("Location", redirect_uri), action=redirect_uri,
        fields=_form_fields(resp, args, redirect_uri)), 400))
    page.headers["Cache-Control"] = "no-store"
    log.info("authorization error shown, not redirected", extra={"error": error.error})
    return page


def _error_redirect(srv, oreq, error: OAuth2Error):
    """The redirect to the client's (validated) redirect URI carrying ``error``, with ``state`` and ``iss``."""
    if error.state is None:
        error.state = oreq.payload.state if oreq is not None and oreq.payload else None
    log.info("authorization error", extra={"error": error.error})
    return srv.issuer_parameter.add_to(srv.handle_error_response(oreq, error))  # RFC 9207


def _describe(error: OAuth2Error) -> str:
    if error.error == "invalid_client":
        return "The application that sent you here is not registered with Deep Authenticator (unknown client)."
    desc = error.description or error.error
    if "redirect" in (desc or "").lower():
        return ("The application that sent you here gave a return address (redirect_uri) that is not "
                "registered for it, so you cannot be sent back.")
    return f"The application sent an invalid sign-in request: {desc}"


def _consent_needed(db, client, uid: str, scopes: list[str], prompts: set[str]) -> bool:
    if "consent" in prompts:
        return True
    if client.skip_consent:
        return False
    return not consents.covers(db, uid, client.client_id, scopes)


def _load_user(db, uid: str):
    """The signed-in account, None when it is gone or may not sign in (disabled, being deleted)."""
    from idp.accounts.current import usable_user
    doc = usable_user(db, uid) if uid else None
    return UserRef(doc["_id"], doc) if doc else None


def _issue_code(srv, grant, user, pending: PendingRequest | None = None):
    """The code for a validated request; for the stored ``pending`` request, its one answer (:func:`_answer`).
    A request that is not the stored one (``prompt=none``) leaves the stored one pending."""
    def respond():
        return srv.create_authorization_response(request=grant.request, grant_user=user, grant=grant)
    if pending is not None:
        return _answer(pending, grant, respond)
    return _deliver(respond(), grant.request.payload.data, grant.redirect_uri)


def _answer(pending: PendingRequest, grant, respond):
    """Answer the stored request ``pending`` (validated as ``grant``) once: ``respond()`` (the authorization
    response, a redirect to the client with a code or an error) runs for the first post only; the other
    posts of it meanwhile (a double click on "Allow") are sent the same redirect: never a second code, never
    an error page while the first post's answer is usable (the code's lifetime, until the client redeemed it:
    a code sent again then would be presented twice, which revokes what the first redemption got)."""
    grant.request.pending_rid = pending.rid  # stored with the code (idp.oauth.server.save_authorization_code)

    def make():
        location = respond().headers.get("Location")
        if not location:  # not a redirect (the client was disabled meanwhile): nothing to send it, or keep
            raise _NoRedirect()
        return {"location": location, "response_mode": pending.args.get("response_mode"),
                "redirect_uri": grant.redirect_uri}
    try:
        answer = answer_request(pending, make, keep_s=get_config().code_lifetime_s)
    except _NoRedirect:
        answer = None
    return _replay(answer) if answer is not None else error_response(400, REQUEST_GONE)


class _NoRedirect(Exception):
    """The authorization response of :func:`_answer` was not a redirect to the client."""


def _replay(answer: dict):
    """The response carrying an answer of :func:`_answer` (a redirect, or its form_post page)."""
    return _deliver(redirect(answer["location"], 302), {"response_mode": answer["response_mode"]},
                    answer["redirect_uri"])


def _validate(srv, args: dict):
    oreq = srv.create_oauth2_request(dict(args))
    grant = srv.get_consent_grant(oreq, end_user=None)
    return oreq, grant


MAX_POSTED_PARAMS = 8192  # bytes of a POST /authorize body turned into the query
TOO_LARGE = ("This sign-in request is too large: its parameters do not fit in the address the sign-in returns to "
             "(at most 8 KB). Start again from the application.")


@bp.post("/authorize")
def authorize_post():
    """OpenID Connect Core 3.1.2.1: the authorization request may be POSTed (form-encoded). It is answered
    with a 303 to the same request as a GET: the RP's cross-site POST carries no SameSite=Lax session
    cookie, so handling it here would start a new, empty session; the GET navigation that follows does
    carry it. Nothing is read from or written to the session on this step."""
    if request.mimetype != "application/x-www-form-urlencoded" or (request.content_length or 0) > MAX_POSTED_PARAMS:
        return error_response(400, "Send the sign-in request form-encoded (at most 8 KB).")
    from urllib.parse import urlencode
    items = [(k, v) for k, v in request.form.items(multi=True) if k != "_rid"]
    url = url_for("oauth.authorize") + "?" + urlencode(items)
    if not fits_request_line(url):  # the GET it is answered with would be the server's bare 400
        return error_response(400, "Send the sign-in request form-encoded (at most 8 KB).")
    return redirect(url, 303)


@bp.get("/authorize")
def authorize():
    srv = server()
    db = get_db()
    for key in request.args:
        if len(request.args.getlist(key)) > 1:
            return error_response(400, f"The sign-in request repeats the parameter {key!r}.")
    args = request.args.to_dict()
    rid = args.pop("_rid", None)
    pending = pending_request()
    resumed = bool(rid and pending is not None and pending.rid == rid)
    if rid and not resumed and (answer := request_answer(rid)) is not None:
        return _replay(answer)  # the same resume followed twice at once: the request's one answer
    if resumed:
        args = dict(pending.args)
    oreq = None
    try:
        oreq, grant = _validate(srv, args)
    except OAuth2Error as error:
        return _redirect_error(srv, oreq or srv.create_oauth2_request(dict(args)), error, answers_pending=resumed)
    client = grant.request.client
    redirect_uri = grant.redirect_uri
    state = args.get("state")

    def fail(exc_cls, description=None):
        return _redirect_error(srv, oreq, exc_cls(description, redirect_uri=redirect_uri, state=state),
                               answers_pending=resumed)

    if args.get("request"):
        e = InvalidRequestError("Request objects are not supported.", redirect_uri=redirect_uri, state=state)
        e.error = "request_not_supported"
        return _redirect_error(srv, oreq, e, answers_pending=resumed)
    if args.get("request_uri"):
        e = InvalidRequestError("request_uri is not supported.", redirect_uri=redirect_uri, state=state)
        e.error = "request_uri_not_supported"
        return _redirect_error(srv, oreq, e, answers_pending=resumed)
    if args.get("response_mode") not in (None, "", *RESPONSE_MODES):  # empty: as if omitted (RFC 6749 3.1)
        bad = dict(args, response_mode="query")  # the error itself goes back in the query
        return _redirect_error(srv, srv.create_oauth2_request(bad), InvalidRequestError(
            "Unsupported 'response_mode' (query or form_post).", redirect_uri=redirect_uri, state=state),
            answers_pending=resumed)
    prompts = set(args.get("prompt", "").split())
    if prompts - {"none", "login", "consent", "select_account"} or ("none" in prompts and len(prompts) > 1):
        return fail(InvalidRequestError, "Invalid 'prompt' parameter.")

    # Core 3.1.2.1: the hint names the End-User the relying party expects (read again from the pending request's
    # own arguments when it resumes); one this provider cannot read as its ID token names no one
    hint = args.get("id_token_hint")
    hinted = srv.id_token_hint_claims(hint) if hint else None
    if hint and hinted is None and "none" not in prompts:
        return fail(InvalidRequestError, "The 'id_token_hint' is not an ID token of this provider.")
    now = int(time.time())
    if resumed:
        min_auth_time = pending.min_auth_time
    else:
        bounds = []
        precise = time.time()  # a login must follow this request, even within the same second
        if "login" in prompts or (hinted is not None and auth_state().uid and hinted["sub"] != auth_state().uid):
            # (another account is signed in: the hinted End-User may sign in by this request, as after "use
            # another account")
            bounds.append(precise)
        if args.get("max_age") not in (None, ""):
            # decimal digits only (not int()'s signs, spaces, underscores or other scripts' digits); an age
            # beyond the epoch allows any sign-in, and is taken as that (a larger int overflows a float)
            raw = args["max_age"]
            try:
                max_age = int(raw) if raw.isascii() and raw.isdigit() else None
            except ValueError:  # beyond int()'s 4,300 digits
                max_age = None
            if max_age is None:
                return fail(InvalidRequestError, "Invalid 'max_age' parameter.")
            bounds.append(precise - min(max_age, precise))
        elif (default_max_age := clients_service.applied_max_age(client.doc)) is not None:
            # Registration 1.0 §2: the client's default_max_age, for a request without its own max_age (which
            # overrides it); a resumed request keeps the bound it got at its start
            bounds.append(precise - min(default_max_age, precise))
        min_auth_time = max(bounds) if bounds else None
    acr_values = args.get("acr_values", "").split()
    scopes = grant.request.scope.split()
    probe = PendingRequest(rid="", args=args, created=now, min_auth_time=min_auth_time,
                           client_id=client.client_id, acr_values=acr_values)

    # Before any step or prompt=none answer: a request needing a step this server cannot perform (the face
    # with face sign-in off) can never complete, so it is refused rather than completed without that step.
    unmet = flow.unmet(auth_state(), probe)
    if unmet is not None:
        step, why = unmet
        audit.record(db, audit.AUTHENTICATION_UNMET, user_id=auth_state().uid, client_id=client.client_id,
                     decision="refused", reasons=[step.name], details={"acr_values": args.get("acr_values", "")},
                     repeat_key=audit.network_key(client.client_id), **audit.request_context())
        return fail(UnmetAuthenticationRequirementsError, why)

    if "none" in prompts:
        # Core 3.1.2.1: the hint names whom the relying party expects; a session of anyone else is
        # login_required (never a silent code for another account), and so is a hint we cannot read as our ID
        # token (forged, or signed by a key no longer published): whose it is cannot be told
        if hint and (hinted is None or hinted["sub"] != auth_state().uid):
            return fail(LoginRequiredError)
        st = auth_state()
        step = flow.next_step(st, probe)
        if step is not None:
            if not st.uid or step.name == "password":
                return fail(LoginRequiredError)
            return fail(InteractionRequiredError)
        user = _load_user(db, st.uid)
        if user is None:
            return fail(LoginRequiredError)
        if _consent_needed(db, client, user.id, scopes, prompts - {"none"}):
            return fail(ConsentRequiredError)
        return _issue_code(srv, grant, user)

    if not resumed:
        if not request_fits(args):  # every step would send the browser back to a URL the server refuses bare
            return error_response(400, TOO_LARGE)
        pending = begin_request(args, client.client_id, min_auth_time=min_auth_time, acr_values=acr_values)
    if "select_account" in prompts and not account_chosen(pending):
        choice = _account_choice(db, client, pending)
        if choice is not None:
            return choice
    step = flow.next_step()
    if step is not None:
        # The step's page has a form: create its CSRF token now, in the session write this request makes
        # anyway, rather than in a second one when the page is shown.
        generate_csrf()
        return redirect(url_for(step.endpoint))
    user = _load_user(db, auth_state().uid)
    if user is None:
        from idp.signin import sign_out
        sign_out()
        return error_response(400, "Your account is no longer available. Start again from the application.")
    if hinted is not None and hinted["sub"] != user.id:
        # someone other than the hinted End-User signed in by this request: an error, never their code (an RP
        # re-authenticating its user would take it as the same person's)
        return fail(LoginRequiredError, "Another account than the one the application named signed in.")
    if _consent_needed(db, client, user.id, scopes, prompts):
        # RFC 7591 §5: a registrant chooses its client's name and logo (those of an application users trust), so the
        # page names the site the answer goes to, and whether the operator registered the client
        return render_template("oauth/consent.html", client=client, rid=pending.rid,
                               scopes=[(s, SCOPE_WORDS.get(s, s)) for s in scopes], user=user.doc,
                               site=_site_of(redirect_uri),
                               self_registered=not clients_service.redirects_trusted(client.doc))
    return _issue_code(srv, grant, user, pending)


def _account_choice(db, client, pending: PendingRequest):
    """OpenID Connect Core 3.1.2.1 ``prompt=select_account``: the page where the user continues as the account
    signed in to this browser or uses another one (:func:`select_account`), before any step of the sign-in. None
    when the login page comes first anyway (no account signed in, or the request needs a new login): any account
    may sign in there, and that sign-in is the choice (``idp.signin.complete_step``)."""
    step = flow.next_step()
    if step is not None and step.name == "password":
        return None
    user = _load_user(db, auth_state().uid)
    if user is None:
        return None
    return render_template("oauth/select_account.html", client=client, rid=pending.rid, user=user.doc)


@bp.post("/authorize/account")
def select_account():
    """The account choice page's answer: ``choice=continue`` goes on with the signed-in account, ``choice=another``
    to the login page (a login completed from now on is needed; whoever signs in there is the choice). Either way
    the request goes on at the authorization endpoint, which checks it again."""
    srv = server()
    pending, oreq, grant, refused = _posted_request(srv)
    if refused is not None:
        return refused
    choice = request.form.get("choice")
    if choice not in ("continue", "another"):
        return error_response(400, "Choose to continue as the account shown or to use another one.")
    if choice == "continue" and (changed := _shown_account_changed(pending)) is not None:
        return changed
    choose_account(another=choice == "another")
    return redirect(pending.url())


SIGNED_OUT_MEANWHILE = ("You were signed out (in another window) after the page you used was shown, so your answer "
                        "was not used. Please sign in and answer again.")
ACCOUNT_CHANGED = ("You are now signed in as another account than the page you used showed (a sign-in in another "
                   "window), so your answer was not used. Please check the account and answer again.")


def _shown_account_changed(pending: PendingRequest):
    """An answer given on a page that showed one account (the consent and account choice pages carry its id in
    ``account``) is used only for that account: when another account signed in to this browser meanwhile (in
    another window), the request's page is shown again, for the account now signed in, instead of giving a code
    (or a choice) for an account the user did not see. None when the shown account is still the signed-in one."""
    uid = auth_state().uid
    if uid and request.form.get("account") == uid:
        return None
    flash(ACCOUNT_CHANGED if uid else SIGNED_OUT_MEANWHILE, "info")
    return redirect(pending.url())


REQUEST_GONE = "This sign-in request is no longer active. Start again from the application."
TOO_LONG_TO_RESTART = ("The sign-in you were doing has ended (it expired, or you signed out in another window), and "
                       "the application's request is too large to start again from here. Start again from the "
                       "application.")
RESTARTED = ("The page you sent belonged to a sign-in that has ended (it expired, or you signed out in another "
             "window), so what it carried was not used. Please continue here.")


@bp.get("/authorize/restart")
def restart():
    """A page of a sign-in whose session has ended sends the browser here with the request it was shown for
    (``idp.signin.restart_url``; a form's post is sent here by :func:`restart_posted_request`): the request
    starts again at the authorization endpoint, which checks it again like any request, unless it was answered
    (then it is over) or is older than a sign-in lasts. Nothing the page carried is used."""
    from idp.signin import REQUEST_FIELD, answered, restart_request, signed_request
    req = signed_request(request.args.get(REQUEST_FIELD))
    if req is None or answered(req):
        return error_response(400, REQUEST_GONE)
    url = restart_request(req)
    if url is None:
        return error_response(400, TOO_LONG_TO_RESTART)
    flash(RESTARTED, "info")
    return redirect(url)


def restart_posted_request():
    """The answer to a sign-in form that failed its CSRF check (its session ended: expired, signed out in
    another tab) when it names the request it was shown for: back into that request (303 to :func:`restart`),
    or, once the request is over, the page saying so. None for any other form (the "form expired" page)."""
    from idp.signin import REQUEST_FIELD, posted_request
    req = posted_request()
    if req is None:
        return None
    url = url_for("oauth.restart", **{REQUEST_FIELD: request.form[REQUEST_FIELD]})
    return redirect(url, 303) if fits_request_line(url) else error_response(400, TOO_LONG_TO_RESTART)


def _posted_request(srv):
    """The pending authorization request a sign-in page's form was posted for, validated again:
    ``(pending, oreq, grant, None)``, or ``(.., .., .., response)`` to return when it is gone or invalid. A
    form posted for a request that was answered meanwhile gets that answer while it is kept (the same form
    posted twice)."""
    pending = pending_request()
    if pending is None or request.form.get("rid") != pending.rid:
        answer = request_answer(request.form.get("rid", ""))
        if answer is None:  # the request the form was shown for starts again (another tab replaced it)
            answer = restart_posted_request()
            return pending, None, None, (answer if answer is not None else error_response(400, REQUEST_GONE))
        return pending, None, None, _replay(answer)
    oreq = None
    try:
        oreq, grant = _validate(srv, pending.args)
    except OAuth2Error as error:
        return pending, oreq, None, _redirect_error(srv, oreq or srv.create_oauth2_request(dict(pending.args)), error,
                                                    answers_pending=True)
    return pending, oreq, grant, None


@bp.post("/authorize/consent")
def consent():
    srv = server()
    db = get_db()
    pending, oreq, grant, refused = _posted_request(srv)
    if refused is not None:
        return refused
    if flow.next_step() is not None:
        return redirect(pending.url())
    user = _load_user(db, auth_state().uid)
    if user is None:
        return redirect(pending.url())
    if (changed := _shown_account_changed(pending)) is not None:
        return changed
    allowed = request.form.get("decision") == "allow"
    return _answer(pending, grant, lambda: _decided(srv, db, grant, user, allowed))


def _decided(srv, db, grant, user, allowed: bool):
    """Record the user's decision on the consent page; the authorization response (a code, or access_denied)."""
    client = grant.request.client
    scopes = grant.request.scope.split()
    if allowed:
        consents.grant(db, user.id, client.client_id, scopes)
        # the scopes are part of the key: a consent to other scopes is always on record
        audit.record(db, audit.CONSENT_GRANTED, user_id=user.id, client_id=client.client_id, decision="granted",
                     details={"scopes": scopes}, **audit.ordinary_use(user.id, client.client_id, " ".join(sorted(scopes))),
                     **audit.request_context())
    else:
        audit.record(db, audit.CONSENT_DENIED, user_id=user.id, client_id=client.client_id, decision="denied",
                     details={"scopes": scopes}, **audit.ordinary_use(user.id, client.client_id),
                     **audit.request_context())
    log.info("consent granted" if allowed else "consent denied", extra={"client_id": client.client_id})
    return srv.create_authorization_response(request=grant.request, grant_user=user if allowed else None, grant=grant)


@bp.post("/authorize/cancel")
def cancel():
    """"Cancel" on the sign-in pages: back to the application with ``error=access_denied`` (with ``state``
    and ``iss``, in the request's response mode), as the request's one answer (:func:`_answer`).
    CSRF-protected like every form. It answers the request its page was shown for (``signin_request``), even
    when another tab started another since (``idp.signin.follow_posted_request``)."""
    srv = server()
    follow_posted_request()
    pending, oreq, grant, refused = _posted_request(srv)
    if refused is not None:
        return refused
    log.info("sign-in cancelled", extra={"client_id": grant.request.client.client_id})
    error = AccessDeniedError("The user cancelled the sign-in.", redirect_uri=grant.redirect_uri,
                              state=pending.args.get("state"))
    return _answer(pending, grant, lambda: _error_redirect(srv, oreq, error))


def requesting_app() -> dict | None:
    """For the sign-in pages (template global): the application of the pending authorization request —
    its name, https logo, policy and terms links (templates escape them) and the request id for Cancel.
    A logo's origin is allowed in this response's CSP (``img-src``)."""
    from flask import g
    pending = pending_request()
    if pending is None or not pending.client_id:
        return None
    doc = clients_service.get_client_cached(get_db(), pending.client_id)
    if not doc or not doc.get("enabled", True):
        return None
    logo = doc.get("logo_uri")
    origin = clients_service.logo_origin(logo) if logo else None
    if origin:
        g.client_logo_origin = origin
    else:  # one stored before logo_uri was checked this way is not shown (its origin cannot go into the CSP)
        logo = None
    return {"name": doc.get("name") or doc["_id"], "logo_uri": logo,
            "policy_uri": doc.get("policy_uri"), "tos_uri": doc.get("tos_uri"), "rid": pending.rid}


# --- API endpoints (no cookies, no CSRF; declared in API_PATHS) -----------------------------------

def _repeated_parameter(srv):
    """RFC 6749 §3.2 ("parameters MUST NOT be included more than once"), for the token, revocation and
    introspection endpoints: the ``invalid_request`` response when a parameter is sent more than once (twice in
    the body, or in both query and body), before anything reads it, else None. Nothing is redeemed, rotated or
    revoked for such a request (which ``code``, ``refresh_token`` or ``token`` would count is ambiguous). Linear
    in the number of parameters: it runs before client authentication, for anyone's body."""
    counts = Counter(k for d in (request.args, request.form) for k, _ in d.items(multi=True))
    repeated = sorted(n for n, c in counts.items() if c > 1)
    if not repeated:
        return None
    name = repeated[0] if repeated[0].isascii() and repeated[0].isidentifier() else "a parameter"
    return srv.handle_error_response(None, InvalidRequestError(f"The request repeats {name}."))


@bp.post("/oauth/token")
def token():
    srv = server()
    return _repeated_parameter(srv) or srv.create_token_response()


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo():
    return server().create_endpoint_response("userinfo")


@bp.post("/oauth/revoke")
def revoke():
    """RFC 7009; a repeated parameter is refused (``_repeated_parameter``): answered 200 for one ``token`` of two,
    the client would take a token it meant as revoked."""
    srv = server()
    return _repeated_parameter(srv) or srv.create_endpoint_response("revocation")


@bp.post("/oauth/introspect")
def introspect():
    """RFC 7662; a repeated parameter is refused (``_repeated_parameter``)."""
    srv = server()
    return _repeated_parameter(srv) or srv.create_endpoint_response("introspection")


@bp.post("/oauth/register")
def register():
    """RFC 7591, with the initial access token checked under the bearer-token throttle (``idp.web.bearer``)
    before Authlib reads the request."""
    expected = get_config().registration_access_token
    if not expected:
        return error_response(404, "Dynamic client registration is not enabled.")
    checked = bearer.check(get_db(), get_config(), "registration", expected)
    if checked.wait:
        return bearer.throttled_response(checked.wait)
    if not checked.ok:
        resp = error_response(401, "A valid initial access token is required.", "invalid_token")
        # RFC 6750 §3.1: an error code in the challenge only when a bearer token was actually sent
        sent = bearer.sent_token(request.headers.get("Authorization")) is not None
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if sent else "Bearer"
        return resp
    if not request.is_json:
        return error_response(400, "Send the client metadata as JSON.", "invalid_client_metadata")
    return server().create_endpoint_response("client_registration")


# --- RP-initiated logout ------------------------------------------------------------------------

#: The parameters of a logout request (RP-Initiated Logout 1.0 §2): the only ones read, and the only ones the
#: confirmation form carries on (it echoed every parameter sent: a page many times the size of the request).
LOGOUT_PARAMS = ("id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales")


@bp.route("/end-session", methods=["GET", "POST"])
def end_session():
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError

    srv = server()
    params = {k: request.values[k] for k in LOGOUT_PARAMS if k in request.values}
    confirmed = False
    if request.method == "POST" and request.form.get("confirm") == "yes":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            return error_response(400, "Your form expired or was not sent from this site. Go back, reload and "
                                       "try again.", "csrf_failed")
        confirmed = True

    def validate(p):
        oreq = srv.create_oauth2_request(dict(p))
        oreq.confirmed = confirmed
        return srv.validate_endpoint_request("end_session", oreq)

    hinted = None  # the client of a valid hint that does not count (its application stays named)
    try:
        ereq = validate(params)
        claims = ereq.id_token_claims
        state = auth_state()
        uid = state.uid
        # A hint names the session to end (its sid, RP-Initiated Logout 1.0 §2): one for another account, or for
        # an earlier sign-in of this one (an ID token any application the user ever used still holds), is no
        # hint. Nor, for a self-registered client, is one that names no session of this browser (RFC 9700
        # 4.11.2): its registrant can mint hints (signing in to its own application), so without the user's
        # confirmation the link would send anyone not signed in to the URI it registered.
        trusted = ereq.client is not None and clients_service.redirects_trusted(ereq.client.doc)
        if claims is not None and (claims.get("iss") != get_config().issuer
                                   or ((uid or not trusted) and claims.get("sub") != uid)
                                   or (uid and claims.get("sid") != state.sid)):
            hinted = ereq.client
            raise InvalidRequestError("ID token hint not for this session")
    except OAuth2Error:
        params.pop("id_token_hint", None)
        if hinted is not None:  # the user's confirmation may still return to it
            params.setdefault("client_id", hinted.client_id)
        try:
            ereq = validate(params)
        except OAuth2Error as error:
            return error_response(400, f"The sign-out request is not valid: {error.description or error.error}")
    if ereq.needs_confirmation and not confirmed:
        # where confirming leads (a URI registered for the client), named as the RFC 9700 4.11.2 page names it
        back = params.get("post_logout_redirect_uri")
        registered = ereq.client is not None and back in (ereq.client.doc.get("post_logout_redirect_uris") or [])
        return render_template("oauth/logout_confirm.html", params=params, client=ereq.client,
                               signed_in=bool(auth_state().uid), site=_site_of(back) if registered else None)
    resp = srv.create_endpoint_response("end_session", ereq)
    if resp is not None:
        return resp
    return render_template("oauth/logged_out.html", client=ereq.client)


# --- connected apps ---------------------------------------------------------------------------------

@bp.get("/account/apps")
@login_required
def apps():
    db = get_db()
    uid = signed_in_uid()
    items = []
    for c in consents.list_for_user(db, uid):
        client = clients_service.get_client(db, c["client_id"])
        items.append({"client_id": c["client_id"], "name": (client or {}).get("name", "Deleted application"),
                      "scopes": [SCOPE_WORDS.get(s, s) for s in c.get("scopes", [])],
                      "granted_at": c.get("granted_at"), "consented": c["consented"]})
    return render_template("oauth/apps.html", apps=items)


@bp.post("/account/apps/<client_id>/remove")
@login_required
def remove_app(client_id):
    db = get_db()
    uid = signed_in_uid()
    removed = consents.revoke(db, uid, client_id)
    if removed:  # only a consent or live grant that existed is audited (the path's client_id is user input)
        audit.record(db, audit.CONSENT_REVOKED, user_id=uid, client_id=client_id, decision="revoked",
                     **audit.ordinary_use(uid, client_id), **audit.request_context())
        flash("Access removed. The application must sign you in again before it can use your account.", "success")
    return redirect(url_for("oauth.apps"))


# This blueprint's API paths (see idp.web.api): relying parties call them, browser-based clients some of them
# cross-origin (cors), the discovery document names them (metadata).
API_PATHS = (
    ApiPath("/oauth/"),  # relying parties only: no browser session, JSON errors (also for unknown paths)
    ApiPath("/oauth/token", "oauth.token", csrf=False, cors=True, metadata="token_endpoint"),
    ApiPath("/oauth/userinfo", "oauth.userinfo", csrf=False, cors=True, metadata="userinfo_endpoint"),
    ApiPath("/oauth/revoke", "oauth.revoke", csrf=False, cors=True, metadata="revocation_endpoint"),
    ApiPath("/oauth/introspect", "oauth.introspect", csrf=False, metadata="introspection_endpoint"),
    ApiPath("/oauth/register", "oauth.register", csrf=False, metadata="registration_endpoint"),
    ApiPath("/.well-known/"),
    ApiPath("/.well-known/openid-configuration", "oauth.discovery", cors=True),
    ApiPath("/.well-known/oauth-authorization-server", "oauth.discovery", cors=True),  # RFC 8414 §3
    ApiPath("/jwks.json", "oauth.jwks", cors=True, metadata="jwks_uri"),
    # Browser pages reached from other sites: the session is used and errors are pages. A POSTed
    # authorization request carries no token of ours (it is turned into a GET of the same request); the
    # end-session page checks its own CSRF token on its confirmation form.
    ApiPath("/authorize", "oauth.authorize_post", browser_session=True, csrf=False, json_errors=False,
            metadata="authorization_endpoint"),
    ApiPath("/end-session", "oauth.end_session", browser_session=True, csrf=False, json_errors=False,
            metadata="end_session_endpoint"),
)
