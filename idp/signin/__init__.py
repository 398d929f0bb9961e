"""The sign-in as a sequence of steps: password → [face] → back to the authorization request.

Each step is a small object that says whether the current session already
satisfies it for the pending request; the flow sends the browser to the first
unsatisfied step, and to the ``resume`` URL once none is left. A new factor
slots in by registering one more step — the password and consent code do not
change. Each app has its own flow (``flow_for(app)``, in ``app.extensions``); features register their
steps from ``init_app``; ``flow`` is the flow of the app serving the current request.
"""
from .flow import (
    AuthState, PendingRequest, SigninFlow, Step, advance, auth_state, answer_request, begin_request, clear_request,
    complete_step,
    flow, flow_for, pending_request, request_answer, resume_url, sign_out,
)

__all__ = [
    "AuthState", "PendingRequest", "SigninFlow", "Step", "advance", "answer_request", "auth_state", "begin_request",
    "clear_request",
    "complete_step", "flow", "flow_for", "pending_request", "request_answer", "resume_url", "sign_out",
]
