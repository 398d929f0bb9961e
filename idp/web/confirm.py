"""Confirmation of destructive actions: a POST (CSRF-checked like every form) without ``confirm=yes``
does nothing and answers a page that asks, whose button posts the same form with ``confirm=yes``."""
from __future__ import annotations

from flask import render_template, request


def confirmed() -> bool:
    return request.method == "POST" and request.form.get("confirm") == "yes"


def confirm_page(*, form_id: str, title: str, message: str, button: str, cancel_url: str, fields: dict | None = None):
    """The "are you sure?" page for the current POST's URL; ``fields``: hidden fields to post again."""
    return render_template("confirm.html", form_id=form_id, title=title, message=message, button=button,
                           cancel_url=cancel_url, action=request.path, fields=fields or {})
