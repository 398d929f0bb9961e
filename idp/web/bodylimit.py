"""How large a request body may be: ``IDP_MAX_FORM_BYTES`` for every request but the views marked
:func:`large_body` (the face frames), which take up to ``IDP_MAX_BODY_BYTES``.

Forms and the OAuth endpoints parse their whole body into a list of parameters before any check (CSRF,
client authentication, the repeated-parameter check), for anyone: 2 MiB of ``a=&a=&...`` cost about 90 MB of
memory and a third of a second of CPU per request. The smaller limit is applied before anything reads the body
(a 413 otherwise); what those requests legitimately carry (a client's metadata: at most 20 URIs of 2,000
characters per list) stays far below it."""
from __future__ import annotations


def large_body(view):
    """Mark ``view`` as taking bodies up to ``IDP_MAX_BODY_BYTES`` (the app's ``MAX_CONTENT_LENGTH``), read by
    the view itself (a face frame's image bytes)."""
    view.large_body = True
    return view


def init_body_limits(app, max_form_bytes: int) -> None:
    """Limit every request body to ``max_form_bytes`` (never above ``MAX_CONTENT_LENGTH``) unless its view is
    marked :func:`large_body`. Registered before anything that reads a body (CSRF protection)."""
    from flask import request

    @app.before_request
    def _limit_body():
        view = app.view_functions.get(request.endpoint or "")
        if not getattr(view, "large_body", False):
            request.max_content_length = min(max_form_bytes, app.config["MAX_CONTENT_LENGTH"] or max_form_bytes)
