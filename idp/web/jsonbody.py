"""Request bodies parsed as JSON fail as bad input, never as a server error."""
from __future__ import annotations

from flask.json.provider import DefaultJSONProvider


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, except that a body nested too deeply for the parser (``[[[[...`` within the
    body-size limit) raises ``ValueError`` like any other malformed JSON, so ``request.get_json()`` answers
    400 (or ``None`` with ``silent=True``) instead of a ``RecursionError`` 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
