"""Step machine for interactive sign-in, kept in the server-side session.

Session keys (all JSON-serialisable, stored in MongoDB by idp.web.sessions):
  ``auth``  {"uid", "auth_time", "amr": [...], "acr"} — what the browser has proven
  ``authz`` {"rid", "args", "created", "min_auth_time", "acr_values", "client_id"} — the pending
            authorization request the steps work towards, or None when signing in to the account pages
  ``next``  where to go after the steps when there is no pending authorization request
  ``authz_restart`` {"rid", "args"} — a request of an ended session started again (:func:`restart_request`)
  ``authz_account`` the rid of the pending request whose account the user chose (``prompt=select_account``:
            :func:`account_chosen`)
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode

from flask import current_app, session, url_for
from werkzeug.local import LocalProxy

from idp.parsing import fits_request_line

# acr values (documented in README): password only, password + face, password + a one-time recovery code.
ACR_PWD = "urn:deepauth:acr:pwd"
ACR_PWD_FACE = "urn:deepauth:acr:pwd+face"
ACR_PWD_OTP = "urn:deepauth:acr:pwd+otp"


@dataclass
class AuthState:
    uid: str | None = None
    auth_time: int | None = None
    amr: list[str] = field(default_factory=list)
    # this sign-in's session id for apps (OIDC ``sid``): new when an account signs in to the browser, kept when the
    # same account authenticates again (``prompt=login``, ``max_age``), so that its end ends everything of it
    sid: str | None = None
    # when the password step of this login completed, to the microsecond: ``prompt=login`` must not be
    # satisfied by a login in the same second as the request (``auth_time`` is whole seconds, for tokens)
    authenticated_at: float | None = None

    @property
    def acr(self) -> str:
        if {"pwd", "face"} <= set(self.amr):
            return ACR_PWD_FACE
        return ACR_PWD_OTP if {"pwd", "otp"} <= set(self.amr) else ACR_PWD


@dataclass
class PendingRequest:
    rid: str
    args: dict
    created: int
    min_auth_time: float | None  # the login must have completed at or after this (epoch seconds)
    client_id: str | None
    acr_values: list[str]

    def url(self) -> str:
        """The authorization endpoint again, with the stored parameters and this request's id."""
        return url_for(flow.request_endpoint) + "?" + urlencode({**self.args, "_rid": self.rid})


RID_BYTES = 16  # a request's id: secrets.token_urlsafe(RID_BYTES), always of one length


def request_fits(args: dict) -> bool:
    """Whether a request with the parameters ``args`` can be pending: the URL every step of its sign-in sends
    the browser back to (:meth:`PendingRequest.url`, its parameters encoded again - which can make them longer
    than the browser sent them - and its id) fits the server's request line."""
    probe = PendingRequest(rid=secrets.token_urlsafe(RID_BYTES), args={k: v for k, v in args.items() if k != "_rid"},
                           created=0, min_auth_time=None, client_id=None, acr_values=[])
    return fits_request_line(probe.url())


def auth_state() -> AuthState:
    """What this browser has proven. A method whose proof no longer stands (:attr:`SigninFlow.proof_checks`, e.g. a
    face check against a template since deleted or replaced) is left out of ``amr``: it satisfies no step, reaches
    no code or token, and the next step completed stores the session without it."""
    data = session.get("auth") or {}
    uid, amr = data.get("uid"), list(data.get("amr", []))
    checks = current_app.extensions[EXTENSION].proof_checks if EXTENSION in current_app.extensions else {}
    amr = [m for m in amr if m not in checks or (uid and checks[m](uid))]
    return AuthState(uid=uid, auth_time=data.get("auth_time"), amr=amr, sid=data.get("sid"),
                     authenticated_at=data.get("at"))


def pending_request() -> PendingRequest | None:
    data = session.get("authz")
    return PendingRequest(**data) if data else None


def begin_request(args: dict, client_id: str | None, *, min_auth_time: int | None, acr_values=None) -> PendingRequest:
    """Remember the authorization request that the sign-in steps work towards: a new one, or the one
    :func:`restart_request` started again (the same parameters), under its id."""
    args = {k: v for k, v in args.items() if k != "_rid"}
    restarted = session.pop(_RESTART_KEY, None) or {}
    rid = restarted["rid"] if restarted.get("args") == args else secrets.token_urlsafe(RID_BYTES)
    req = PendingRequest(rid=rid, args=args,
                         created=int(time.time()), min_auth_time=min_auth_time, client_id=client_id,
                         acr_values=list(acr_values or []))
    session["authz"] = req.__dict__
    return req


def clear_request() -> None:
    """The session's sign-in works towards no authorization request: the pending one (and its account choice)
    leaves the session. Not an answer: a page that names it makes it pending again (:func:`follow_request`)."""
    session.pop("authz", None)
    session.pop(_CHOSEN_KEY, None)


_CHOSEN_KEY = "authz_account"


def account_chosen(req: PendingRequest | None = None) -> bool:
    """Whether the user chose the account for the pending request ``req`` (default: this session's): on the
    account choice page (:func:`choose_account`), or by signing in on the login page while it was pending
    (:func:`complete_step`; any account may sign in there). OpenID Connect Core 3.1.2.1 ``prompt=select_account``."""
    req = req if req is not None else pending_request()
    return req is not None and session.get(_CHOSEN_KEY) == req.rid


def choose_account(*, another: bool) -> None:
    """The user chose the account for the pending request: the signed-in one, or (``another``) one the login page
    will ask for - the password step then needs a login completed from now on (as for ``prompt=login``), and
    another account signing in there replaces this one's sign-in in the browser (:func:`complete_step`)."""
    req = pending_request()
    if req is None:
        return
    if another:
        session["authz"] = {**req.__dict__, "min_auth_time": time.time()}
    session[_CHOSEN_KEY] = req.rid


REQUEST_FIELD = "signin_request"  # the field of a sign-in form (and parameter of the restart URL) carrying it
_REQUEST_SALT = "deepauth sign-in request"


def _request_signer():
    from idp import get_config
    from idp.keyring import signer
    return signer(get_config(), _REQUEST_SALT)


def request_token(req: PendingRequest | None = None) -> str:
    """The pending request ``req`` (default: this session's; "" without one), signed for the sign-in pages'
    forms to carry: a form posted once its session has ended (expired, signed out in another tab) fails its
    CSRF check and uses nothing it carries, but names the request it was shown for (:func:`posted_request`)."""
    req = req if req is not None else pending_request()
    return _request_signer().dumps(req.__dict__) if req is not None else ""


def signed_request(token) -> PendingRequest | None:
    """The request a :func:`request_token` names, while a sign-in lasts (``IDP_SESSION_LIFETIME``, as long as
    its answer is told apart, see :func:`answered`); None for anything else (not ours, altered, older)."""
    from itsdangerous import BadData

    from idp import get_config
    if not isinstance(token, str) or not token or len(token) > 16384:
        return None
    lifetime = get_config().session_lifetime_s
    try:
        data = _request_signer().loads(token, max_age=lifetime)
        req = PendingRequest(**data)
    except (BadData, TypeError, ValueError):
        return None
    if not isinstance(req.args, dict) or not isinstance(req.rid, str) or time.time() - req.created >= lifetime:
        return None
    return req


def posted_request() -> PendingRequest | None:
    """The request the posted sign-in form was shown for (its ``REQUEST_FIELD``), None when it names none."""
    from flask import request
    return signed_request(request.form.get(REQUEST_FIELD)) if request.method == "POST" else None


def answered(req: PendingRequest) -> bool:
    """Whether ``req`` was answered (a code or an error sent to its client, in any session): its claim by
    :func:`answer_request` is kept as long as a sign-in lasts."""
    from idp.web.sessions import answer_claimed
    return answer_claimed(req.rid)


def follow_posted_request() -> None:
    """A sign-in form posted in this session (its CSRF check passed) goes on with what it was shown for
    (:func:`follow_request` of its ``REQUEST_FIELD``, None when the form has none)."""
    from flask import request
    follow_request(request.form.get(REQUEST_FIELD))


def follow_request(token) -> None:
    """A sign-in page's answer (a form, the face capture's finish) goes on with what the page was shown for,
    ``token`` being its ``REQUEST_FIELD`` as sent (every sign-in page sends it, empty when it named no request):

    - a request (:func:`signed_request`): that one, even when another tab replaced the session's pending
      request since (one is kept per session): it is pending again, unless it was answered meanwhile (then none
      is, and the sign-in ends on the account pages, never in an application the page did not name);
    - ``""`` (the page named none: the account pages, an administrator's face step-up) or anything else that is
      no request of ours (altered, older than a sign-in lasts): none. A request another tab left pending is set
      aside, neither answered nor consumed: the sign-in ends where its page meant (``next``, the account page),
      not in that application (nor at its consent page), and the other tab's pages, which name the request,
      make it pending again with their next answer;
    - None (not sent: a page shown before every sign-in page sent it, within a session's lifetime of an
      upgrade, or a script posting the form by hand): the session's pending request carries on, as it did for
      every form before. Not failed closed, so such sign-ins still reach their application; the post passed
      this browser session's CSRF check, so it is the user's own, and the confusion with another tab needs a
      page that omits the field, which this server no longer shows.
    """
    if token is None:
        return
    req = signed_request(token)
    current = pending_request()
    if req is not None and current is not None and current.rid == req.rid:
        return
    if req is not None and not answered(req):
        session["authz"] = req.__dict__
    elif current is not None or _CHOSEN_KEY in session:  # its account choice too: asked again once restored
        clear_request()


def request_link(endpoint: str, token: str | None = None) -> str:
    """A link from a sign-in page to another one (``endpoint``), naming what the page was shown for as its forms
    do: ``token`` (default: the session's pending request, :func:`request_token`; "" for none). The page it
    opens goes on with it (:func:`follow_request`). Without it when it would not fit a request line (the
    session's pending request, then)."""
    token = request_token() if token is None else token
    url = url_for(endpoint, **{REQUEST_FIELD: token})
    return url if fits_request_line(url) else url_for(endpoint)


_RESTART_KEY = "authz_restart"  # the request restart_request starts again, for the next begin_request


def restart_request(req: PendingRequest) -> str | None:
    """Where the request ``req`` (of a page whose session ended, :func:`signed_request`) starts again: the
    authorization endpoint with its parameters, checked again like any request (a ``prompt=login`` or
    ``max_age`` bound counts from now). It keeps its id (:func:`begin_request`), so it is answered once, however
    often it is started again: once it was, :func:`answered` says so and the page restarts nothing more. None
    when that URL is longer than the server accepts (a request posted to the authorization endpoint may carry
    more than a URL can): nothing is kept then."""
    if not request_fits(req.args):
        return None
    session[_RESTART_KEY] = {"rid": req.rid, "args": dict(req.args)}
    return url_for(flow.request_endpoint) + "?" + urlencode(req.args)


def restart_url(req: PendingRequest | None = None) -> str | None:
    """Where a page of the pending request ``req`` (default: this session's) sends a browser whose session has
    ended: the request started again (the flow's ``restart_endpoint``); None without a request."""
    req = req if req is not None else pending_request()
    if req is None or flow.restart_endpoint is None:
        return None
    url = url_for(flow.restart_endpoint, **{REQUEST_FIELD: request_token(req)})
    # a request whose signed form is longer than the server accepts in a URL (large parameters, or one posted
    # to the authorization endpoint) is not restarted from a link: the page's plain sign-in fallback, not a 400
    return url if fits_request_line(url) else None


def answer_request(req: PendingRequest, make: Callable[[], dict], *, keep_s: float) -> dict | None:
    """End the pending request ``req`` with one answer: ``make()`` (what to send the client) runs for the
    first post answering it only; every other post of it in this session meanwhile (a double-clicked
    consent form) gets the same result for ``keep_s`` seconds. None: the request was answered and its
    answer is no longer kept (or it was answered elsewhere), or it is older than a session lives."""
    from idp.web.sessions import answer_once
    clear_request()
    return answer_once(req.rid, req.created, make, keep_s=keep_s)


def request_answer(rid: str) -> dict | None:
    """The answer :func:`answer_request` gave to the request ``rid`` of this session, while it is kept."""
    from idp.web.sessions import kept_answer
    return kept_answer(rid)


def complete_step(uid: str, method: str, *, new_login: bool = False) -> None:
    """Record that ``uid`` passed ``method`` (an RFC 8176 amr value) now.

    Every step changes what the session has proven, so this is the one place the session id is rotated at a
    privilege change (password sign-in, face step-up, recovery code): an id known from before the step opens
    nothing after it. The session's data moves to the new id (a pending authorization request carries on);
    the response of this request sets the new cookie (for the face step, the capture page's JSON call, after
    which the page navigates with it). A step-up of a session that another request ended meanwhile (signed
    out) leaves it ended (``rotate_session`` without ``fresh``). The browser's requests still in flight with
    the old id leave the new cookie alone (``idp.web.sessions``: the old id is superseded, not ended).

    ``new_login`` starts a fresh authentication (password step): earlier factors of another login are
    forgotten. Another account's sign-in replaced this way has ended, as by :func:`sign_out` (its hooks run:
    a shared computer's next user does not inherit the previous one's sessions at the apps). The same account
    authenticating again (``prompt=login``, ``max_age``, the login page posted again) re-authenticates its
    sign-in: the ``sid`` stays, so the sign-out that ends it ends what apps got before the re-authentication
    too (codes, tokens without offline access, back-channel logout); a new ``sid`` would leave those to no end.
    So a re-authentication stands only while that sign-in does: when another request ended it meanwhile (a
    sign-out in another tab, "sign out everywhere", another account's sign-in) it stays ended; stored anew, it
    would carry on a ``sid`` whose end the apps were already told. One that another request of the browser
    moved to a new id meanwhile (a step in another tab, the form posted twice) still lives.
    """
    from idp.web.sessions import rotate_session, supersede_session_now
    state = auth_state()
    precise = time.time()
    now = int(precise)
    if state.uid and state.uid != uid:
        supersede_session_now()  # before the hooks, as sign_out ends its session first
        _end_sign_in(state)
    fresh = new_login or state.uid != uid
    continues = state.uid == uid and bool(state.sid)  # the same sign-in, its sid kept (see above)
    if fresh:
        sid = state.sid if continues else secrets.token_urlsafe(16)
        state = AuthState(uid=uid, auth_time=now, amr=[], sid=sid, authenticated_at=precise)
    rotate_session(fresh=fresh, continues=(uid, state.sid) if continues else None)
    if method not in state.amr:
        state.amr.append(method)
    state.auth_time = now if new_login else (state.auth_time or now)
    if new_login or state.authenticated_at is None:
        state.authenticated_at = precise if new_login else float(state.auth_time)
    session["auth"] = {"uid": state.uid, "auth_time": state.auth_time, "amr": state.amr, "sid": state.sid,
                       "at": state.authenticated_at}
    pending = pending_request() if new_login else None
    if pending is not None:  # the account signed in on the login page is the one chosen for the pending request
        session[_CHOSEN_KEY] = pending.rid


def _end_sign_in(state: AuthState) -> None:
    """Tell the ``idp_sign_out_hooks`` that the sign-in ``state`` (its account and ``sid``) ended."""
    from flask import current_app
    for hook in current_app.extensions.get("idp_sign_out_hooks", []):
        hook(current_app.extensions["db"], state.uid, state.sid)


def sign_out() -> None:
    """Forget everything this browser proved; what the request stores afterwards (a flash message) goes
    into a new anonymous session. The old session ends outright: its requests still in flight drop their
    cookie. The ``idp_sign_out_hooks`` (callables ``(db, uid, sid)``, filled by other packages, e.g.
    back-channel logout) learn which sign-in ended."""
    from idp.web.sessions import end_session_now, rotate_session
    state = auth_state()
    end_session_now()  # before the hooks: a code made for the sign-in meanwhile is ended by them or sees the end
    if state.uid:
        _end_sign_in(state)
    session.clear()
    rotate_session(fresh=True, end=True)


def resume_url() -> str:
    req = pending_request()
    if req is not None:
        return req.url()
    return session.pop("next", None) or url_for(flow.home_endpoint)


@dataclass
class Step:
    """One authentication step.

    ``satisfied(state, request)`` says whether the session already meets the
    step for this request; ``applies(state, request)`` whether the step is
    needed at all (e.g. face only for clients or acr values that require it) — whether or not this
    server can perform it now: a needed step is never skipped. ``unavailable(request)`` says why this
    server cannot perform the step now (None when it can), in words for the relying party.
    """
    name: str
    endpoint: str
    satisfied: Callable[[AuthState, PendingRequest | None], bool]
    applies: Callable[[AuthState, PendingRequest | None], bool] = lambda s, r: True
    unavailable: Callable[[PendingRequest | None], str | None] = lambda r: None


class SigninFlow:
    """The steps of one app, in order, and the two endpoints the steps lead back to.

    Features fill it from their ``init_app`` (see :func:`flow_for`): each registers its own step, the
    accounts feature names the ``home_endpoint`` (where a sign-in without a pending authorization request
    ends) and gives ``account_usable`` (whether an account may still sign in, for ``guards.still_usable``;
    without it, as in an app without accounts, every account may), and the OAuth feature names the
    ``request_endpoint`` (the authorization endpoint a pending request is resumed at) and the
    ``restart_endpoint`` (where a page of an ended session starts its request again).
    Registering a step name twice keeps the first (an app is built once per process, tests build many: each app
    has its own flow).
    """

    def __init__(self):
        self.steps: list[Step] = []
        self.home_endpoint: str | None = None
        self.request_endpoint: str | None = None
        self.restart_endpoint: str | None = None  # starts a request again from its signed token (restart_url)
        self.account_usable: Callable[[str], bool] | None = None
        # amr value -> (uid -> whether this session's proof of it still stands); filled by the features whose
        # step adds the method (the face step: the template it matched is still the stored one); see auth_state
        self.proof_checks: dict[str, Callable[[str], bool]] = {}

    def register(self, step: Step, *, after: str | None = None) -> None:
        """Append ``step``, or put it right after the step named ``after`` (which must be registered)."""
        if any(s.name == step.name for s in self.steps):
            return
        if after is None:
            self.steps.append(step)
        else:
            names = [s.name for s in self.steps]
            if after not in names:
                raise ValueError(f"sign-in step {step.name!r} must follow {after!r}, which is not registered")
            self.steps.insert(names.index(after) + 1, step)

    def next_step(self, state: AuthState | None = None, request: PendingRequest | None = None) -> Step | None:
        state = state or auth_state()
        request = request if request is not None else pending_request()
        for step in self.steps:
            if step.applies(state, request) and not step.satisfied(state, request):
                return step
        return None

    def unmet(self, state: AuthState | None = None, request: PendingRequest | None = None) -> tuple[Step, str] | None:
        """The first step the request still needs (applies, not satisfied) that this server cannot perform,
        with why; None when every needed step can be performed. Such a request can never complete here: it is
        refused (OpenID Connect ``unmet_authentication_requirements``), never completed without the step."""
        state = state or auth_state()
        request = request if request is not None else pending_request()
        for step in self.steps:
            if step.applies(state, request) and not step.satisfied(state, request):
                why = step.unavailable(request)
                if why is not None:
                    return step, why
        return None

    def next_url(self) -> str:
        step = self.next_step()
        return url_for(step.endpoint) if step else resume_url()


EXTENSION = "signin_flow"


def flow_for(app) -> SigninFlow:
    """The sign-in flow of ``app`` (created empty on first use, kept in ``app.extensions``)."""
    return app.extensions.setdefault(EXTENSION, SigninFlow())


# The flow of the app handling the current request.
flow: SigninFlow = LocalProxy(lambda: current_app.extensions[EXTENSION])  # type: ignore[assignment]


def advance(load_user: Callable[[str], object] | None = None):
    """Where the browser goes after a step: the next step, or — when none is left — sign the
    user in with flask-login and resume the pending request (or the ``next`` page). A pending request
    that needs a step this server cannot perform (:meth:`SigninFlow.unmet`) goes back to the authorization
    endpoint, which refuses it."""
    from flask import redirect
    step = flow.next_step()
    if step is not None:
        pending = pending_request()
        if pending is not None and flow.unmet(request=pending) is not None:
            return redirect(pending.url())
        return redirect(url_for(step.endpoint))
    state = auth_state()
    if state.uid and load_user is not None:
        from flask_login import login_user
        user = load_user(state.uid)
        if user is not None:
            login_user(user)
    return redirect(resume_url())
