"""Administration pages: users (/admin/users), the audit log browser (/admin/audit), the face sign-in reset."""
from __future__ import annotations


def init_app(app) -> None:
    from . import users  # noqa: F401 - registers the /admin/users routes on bp
    from .views import bp
    app.register_blueprint(bp)
