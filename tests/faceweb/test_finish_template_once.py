"""The finish of a sign-in with a turn challenge decrypts the stored template once for its decision: the
check that the face which made the last move is the owner's reuses the template the match was scored
with. Real app, real MongoDB server, real face engine on frames of a shared clip."""
from __future__ import annotations

from idp.face import repository
from idp.faceweb import capture

from .conftest import Browser
from .test_liveness_web import d3_turn_left, d3_turn_left_other, enroll_with, live_app, send_burst  # noqa: F401


def test_the_last_move_check_reuses_the_template_of_the_match(live_app, new_user, d3_turn_left,
                                                              d3_turn_left_other, monkeypatch):
    app = live_app("turn_left")
    enroll_with(app, new_user, d3_turn_left)
    loads, finishing = [], []
    real_load, real_finish = repository.load_template, capture.CaptureService._finish

    def load(*args, **kwargs):
        if finishing:
            loads.append(1)
        return real_load(*args, **kwargs)

    def finish(self, *args, **kwargs):
        finishing.append(1)
        try:
            return real_finish(self, *args, **kwargs)
        finally:
            finishing.clear()

    monkeypatch.setattr(repository, "load_template", load)
    monkeypatch.setattr(capture.CaptureService, "_finish", finish)
    b = Browser(app)
    b.login("alice")
    moved = []
    real_check = capture.CaptureService._moves_made_by_owner

    def check(self, doc, windows, template=None):
        if finishing:
            moved.append(template is not None)
        return real_check(self, doc, windows, template)

    monkeypatch.setattr(capture.CaptureService, "_moves_made_by_owner", check)
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    assert moved == [True]  # the finish checked the moves, with the template it had loaded
    assert len(loads) == 2  # the blocker's integrity check and the match: not a third time for the last move
