"""What apps hold for an account ends: other packages register callables ``(db, user_id) -> int`` in
``app.extensions["idp_end_user_grants"]`` (OAuth tokens), so that accounts end them without knowing them."""
from __future__ import annotations

from flask import current_app


def end_app_grants(db, uid: str) -> int:
    """End every grant apps hold for ``uid`` (the ``idp_end_user_grants`` hooks); returns how many ended."""
    return sum(int(hook(db, uid) or 0) for hook in current_app.extensions.get("idp_end_user_grants", []))
