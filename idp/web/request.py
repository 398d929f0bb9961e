"""The app's request class: Flask's, except that a form never has a field without a name."""
from __future__ import annotations

from flask import Request as FlaskRequest


class Request(FlaskRequest):
    """A multipart part without a ``name`` (RFC 7578 4.2 requires one; no browser sends such a part) is no
    field: werkzeug kept it under the key ``None``, which whatever reads the form's keys as text (Flask-WTF's
    CSRF check: ``key.endswith``) failed on with a 500. It is dropped, as werkzeug drops other malformed
    multipart input."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        for name in ("form", "files"):
            data = self.__dict__.get(name)
            if data is not None and None in data:
                self.__dict__[name] = type(data)((k, v) for k, v in data.items(multi=True) if k is not None)
