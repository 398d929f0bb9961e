"""Request bodies parsed as JSON fail as bad input, never as a server error."""
from __future__ import annotations

import json

from flask.json.provider import DefaultJSONProvider


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, except that a body nested too deeply for the parser (``[[[[...`` within the
    body-size limit) raises ``ValueError`` like any other malformed JSON, so ``request.get_json()`` answers
    400 (or ``None`` with ``silent=True``) instead of a ``RecursionError`` 500; and so does a string holding a
    lone surrogate (``"\\ud800"``: an escape without its pair, which no UTF-8 can carry; RFC 8259 8.2), which
    the database refused to store, a 500 after the checks had passed."""

    def loads(self, s, **kwargs):
        try:
            value = super().loads(s, **kwargs)
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        except UnicodeEncodeError:
            raise ValueError("JSON string with a lone surrogate") from None
        return value
