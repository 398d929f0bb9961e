"""Administration pages: the audit log browser (/admin/audit) and the face sign-in reset."""
from __future__ import annotations


def init_app(app) -> None:
    from .views import bp
    app.register_blueprint(bp)
