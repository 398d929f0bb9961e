"""A sign-in capture is counted once: a frame that was already on its way when the capture was finished
must not put it back on the list of captures to settle as abandoned.

``CaptureService._liveness_frame`` lists its capture as unsettled (``attempts.committed``) at every
frame once the moves were shown, before it stores the frame - and the capture document it works on was
read when the request began. A frame request that read the capture while it was open, and reaches that
point after the finish took the capture off the list, lists the finished capture again (its own
storing then fails: the capture is closed). While the capture document exists, the next start sees it
is finished and does not charge it; once the document's lifetime ends (TTL), it is charged as an
abandoned attempt - a second count of a capture already judged, and a "did not pass" mail to the owner
after a successful sign-in.

Real app, real MongoDB server, real face engine and landmark model on frames of a shared clip. The
frame request is the real ``CaptureService.add_frame``, called with the capture as it read it.
"""
from __future__ import annotations

import pytest

from faceweb.test_liveness_web import T0, d3_turn_left, d3_turn_left_other, enroll_with  # noqa: F401
from idp import get_config, get_db

from ._face import Browser, app, cheap_password_hashing, engine, make_app, new_user, people  # noqa: F401


def _frame(b, cap, image, t):
    return b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                 headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t)})


def test_a_frame_in_flight_at_the_finish_does_not_charge_the_capture_again(make_app, new_user, engine,
                                                                           d3_turn_left, d3_turn_left_other):
    from idp.faceweb.capture import CaptureService
    from idp.faceweb.capture_sessions import CaptureError
    from idp.face import TemplateCipher

    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, liveness_challenges="turn_left")
    db = get_db(app)
    uid = db.users.find_one({"username": "alice"})["_id"]
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    assert _frame(b, cap, d3_turn_left_other[0], 0).status_code == 200  # the move is shown: an attempt
    # a second frame request reads the open capture (CaptureService.open_frame) ...
    snapshot = db.capture_sessions.find_one({"_id": cap["capture_id"]})
    # ... the capture is finished meanwhile (counted once) ...
    fin = b.finish(cap).get_json()
    assert fin["ok"] is False and fin["failures"] == 1, fin
    # ... and the frame request goes on with what it read
    config = get_config(app)
    svc = CaptureService(db, config, uid, "verify", engine=lambda: engine,
                         cipher=lambda: TemplateCipher.from_config(config), ip="198.51.100.7", user_agent="tab 2")
    with pytest.raises(CaptureError) as e:
        svc.add_frame(snapshot, d3_turn_left_other[1], T0 + 150)
    assert e.value.code == "too_many_frames" or e.value.status == 409
    status = db.face_status.find_one({"_id": uid}) or {}
    assert cap["capture_id"] not in (status.get("unsettled") or []), status.get("unsettled")
    # the consequence: once the finished capture's document is gone (its TTL), the next start charges it
    db.capture_sessions.delete_one({"_id": cap["capture_id"]})
    assert b.start("verify").status_code == 201
    assert (db.face_status.find_one({"_id": uid}) or {}).get("failures") == 1
