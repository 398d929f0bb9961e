"""The sign-in as a sequence of steps: password → [face] → back to the authorization request.

Each step is a small object that says whether the current session already
satisfies it for the pending request; the flow sends the browser to the first
unsatisfied step, and to the ``resume`` URL once none is left. A new factor
slots in by registering one more step — the password and consent code do not
change. Each app has its own flow (``flow_for(app)``, in ``app.extensions``); features register their
steps from ``init_app``; ``flow`` is the flow of the app serving the current request.
"""
from .flow import (
    REQUEST_FIELD, AuthState, PendingRequest, SigninFlow, Step, account_chosen, advance, answered, auth_state,
    answer_request, begin_request, choose_account, clear_request, complete_step, flow, flow_for,
    follow_posted_request, follow_request, pending_request, posted_request, request_answer, request_fits,
    request_link, request_token, restart_request, restart_url, resume_url, sign_out, signed_request,
)

__all__ = [
    "REQUEST_FIELD", "AuthState", "PendingRequest", "SigninFlow", "Step", "account_chosen", "advance",
    "answer_request", "answered", "auth_state", "begin_request", "choose_account", "clear_request", "complete_step",
    "flow", "flow_for", "follow_posted_request", "follow_request", "pending_request", "posted_request",
    "request_answer", "request_fits", "request_link", "request_token", "restart_request", "restart_url",
    "resume_url", "sign_out", "signed_request",
]
