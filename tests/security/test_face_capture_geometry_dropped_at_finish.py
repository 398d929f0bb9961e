"""A finished capture keeps no face geometry. While a capture is open, each face frame's 468-point mesh (the 3-D
checks), its five landmarks and box (the burst checks) and its face hash (the replay checks) are stored with it in
the database, so that any instance can judge the next frame; the first frame's mesh is the pose reference.
Before, a finished capture kept all of them, unencrypted, until the session expired (about five minutes): a
database reader, or a backup taken then, had the user's face geometry beside the encrypted template (found by a
red team). Now the finish drops them with the embeddings; what stays (time, quality, reasons) is no face.
Real app, real database server, real face engine and landmark model on frames of a shared clip."""
from __future__ import annotations

from faceweb.test_liveness_web import (  # noqa: F401  (fixtures)
    FPS, T0, d3_turn_left, d3_turn_left_other, live_app, send_burst,
)

from ._face import app, cheap_password_hashing, engine, enrolled_and_signing_in, make_app, new_user, people  # noqa: F401

GEOMETRY = ("emb", "dense", "dense_c", "fh", "fhm", "landmarks", "box")


def _geometry_left(doc: dict) -> list[str]:
    left = sorted({k for f in doc.get("frames", []) for k in f if k in GEOMETRY})
    return left + [k for k in ("lv_ref_dense", "lv_ref_thumb") if doc.get(k)]


def test_a_finished_enrollment_and_sign_in_keep_no_face_geometry(live_app, new_user, d3_turn_left,
                                                               d3_turn_left_other):
    _app, db, uid, b = enrolled_and_signing_in(live_app, new_user, d3_turn_left)
    cap, answers, fin = send_burst(b, "verify", d3_turn_left_other)
    assert fin.status_code == 200 and fin.get_json()["ok"] is True, fin.get_json()
    docs = list(db.capture_sessions.find({"user_id": uid}))
    assert {d["purpose"] for d in docs} == {"enroll", "verify"}, docs
    for doc in docs:
        assert doc["status"] == "finished"
        assert len(doc["frames"]) >= 5 and all(f.get("t_ms") is not None for f in doc["frames"])
        assert _geometry_left(doc) == [], (doc["purpose"], _geometry_left(doc))


def test_a_capture_closed_early_keeps_no_face_geometry(live_app, new_user, d3_turn_left, d3_turn_left_other):
    """A capture the server closes itself (here: new frames, then one of an accepted capture sent again) goes
    through the same finish."""
    _app, db, uid, b = enrolled_and_signing_in(live_app, new_user, d3_turn_left)
    cap = b.start("verify").get_json()
    for k, image in enumerate(d3_turn_left_other[:3] + d3_turn_left[:1]):  # then an enrollment frame: a replay
        r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                  headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + k * 1000.0 / FPS)})
        if r.status_code != 200:
            break
    assert r.status_code == 409 and r.get_json()["error"] == "replayed_frame", r.get_json()
    docs = list(db.capture_sessions.find({"user_id": uid, "purpose": "verify"}))
    assert len(docs) == 1 and docs[0]["status"] == "finished", docs
    assert docs[0]["frames"] and _geometry_left(docs[0]) == [], _geometry_left(docs[0])
