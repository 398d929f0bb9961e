"""Closing a capture that a deletion of the face data erases at that moment. The server closes a capture itself
(a replayed frame, an abandoned one) by moving it to ``finishing`` and then finishing the document it reads again;
a deletion between the two (it erases the user's capture sessions) left nothing to read, and the finish of
nothing raised - an error answer instead of the refusal. Now the close answers that the capture was not closed
by it (so its caller neither counts nor audits it after the deletion). Real database server; the deletion runs,
for real, right after the close's own update."""
from __future__ import annotations

from idp.face import TemplateCipher
from idp.faceweb.capture_sessions import Captures


class _DeletedAfterUpdate:
    """The sessions collection, with every session of ``user_id`` deleted right after the next update."""

    def __init__(self, coll, user_id: str):
        self._coll, self._user_id = coll, user_id

    def update_one(self, *args, **kw):
        out = self._coll.update_one(*args, **kw)
        self._coll.delete_many({"user_id": self._user_id})
        return out

    def __getattr__(self, name):
        return getattr(self._coll, name)


def test_a_capture_erased_while_it_is_closed_is_not_closed_by_it_and_raises_nothing(db):
    caps = Captures(db, TemplateCipher("ab" * 32), 300)
    doc = caps.create("u1", "verify", 3)
    caps.coll = _DeletedAfterUpdate(db.capture_sessions, "u1")
    assert caps.close(doc, {"ok": False, "reasons": ["replayed_frame"]}) is False
    assert db.capture_sessions.count_documents({"user_id": "u1"}) == 0  # and nothing written back
