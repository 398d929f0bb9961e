"""The next-move gate is a face comparison: it is charged like one, and answers once per capture.

At sign-in with a two-move challenge the second move is shown only once the faces that performed the first match
the enrolled template (the next-move gate, ``liveness.next_move_spans``): its answer - shown or not - says whether a
face matches. The gate was judged at every face frame, and the capture charged once, at its finish (or as abandoned
at the next start).

Measured on the base (real app, real MongoDB, real face engine and landmark model, shared clips):

* one capture, someone else's move (d12) followed by alice's own recording: the gate was asked again at every face
  frame (28 times) but on the same move - the first the decision saw - and never turned from no to yes;
* but frames of a face turned a little (about 5 degrees) after the failed move move the facing pose the moves are
  measured from (the median of the frames near it), until the failed move (about 12 degrees) falls below the
  10-degree turn threshold: a later move then is the first, and the gate judged it - another face's - in the same
  capture. Several faces' answers from one capture, nothing counted until its finish;
* parallel captures with the count one short of the lock: each capture's moves shown settle the others left
  open (counted as abandoned, which locks here), so they got one gate comparison between them.

Now the capture's one charge is taken before the gate's first comparison (``lockout.charge_attempt``; refused while
face sign-in is locked or a waiting time runs: then nothing is compared), the gate judges once per capture, a no
counts the failure at once and ends the capture (its finish reports it without charging again), and a yes leaves
the charge to the finish (a match resets the count).
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from faceweb.test_liveness_web import T0, clip_frames, d3_turn_left, enroll_with  # noqa: F401
from idp import get_db
from idp.faceweb import capture

from ._face import (  # noqa: F401
    Browser, app, cheap_password_hashing, engine, make_app, new_user, people, session_auth, still_frame,
)
from .test_face_move_evidence_identity import _mirror

TWO = "turn_left+turn_right"
FPS = 7.5


def _alice(make_app, new_user, d3_turn_left, **kw):
    enroll_with(make_app(liveness_enabled=True, liveness_challenges="turn_left"), new_user, d3_turn_left)
    app = make_app(liveness_enabled=True, liveness_challenges=TWO, **kw)
    db = get_db(app)
    return app, db, db.users.find_one({"username": "alice"})["_id"]


def _send(b, cap, frames, t0=0.0, until_done=True) -> list:
    """Send ``frames`` at 7.5 fps, until the server says done (``until_done``) or refuses one: the responses."""
    out = []
    for k, image in enumerate(frames):
        for _ in range(30):  # (a frame told the server is busy is sent again, as the page does)
            r = b.api(cap["frames_url"], data=image, content_type="image/jpeg",
                      headers={"X-Capture-Nonce": cap["nonce"], "X-Frame-Time": str(T0 + t0 + 1000.0 * k / FPS)})
            if r.status_code != 429 or r.get_json().get("error") != "face_busy":
                break
            time.sleep(float(r.get_json().get("retry_after") or 1))
        out.append(r)
        if r.status_code != 200 or (until_done and r.get_json()["done"]):
            break
    return out


def _gates_judged(monkeypatch) -> list[tuple[str, tuple, bool]]:
    """Every next-move gate comparison: (capture id, the spans of the moves judged, answer); the real comparison
    runs."""
    real, seen = capture.CaptureService._moves_made_by_owner, []

    def spy(self, doc, windows, template=None):
        answer = real(self, doc, windows, template)
        if template is None and self.purpose == "verify":  # (the gate's: the finish passes its template)
            seen.append((doc["_id"], tuple((round(a), round(b)) for a, b in windows), answer))
        return answer
    monkeypatch.setattr(capture.CaptureService, "_moves_made_by_owner", spy)
    return seen


@pytest.mark.slow
def test_one_capture_gets_one_gate_answer_charged_at_once(make_app, new_user, faces_dir, d3_turn_left, monkeypatch):
    """d12 performs the first move on alice's account: the gate says no. On the base the capture went on,
    uncounted: frames of a face turned a little (d12's own, about 5 degrees, re-encoded) moved the facing pose
    the moves are measured from, so that d12's move (about 12 degrees) fell below the turn threshold, and the
    next move - another face's (d12's right turn, mirrored) - became the first move and was judged by the gate
    again: two answers about two faces in one capture, none counted before the finish."""
    app, db, uid = _alice(make_app, new_user, d3_turn_left)
    gates = _gates_judged(monkeypatch)
    b = Browser(app)
    b.login("alice")  # the attacker knows the password
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    first = clip_frames(faces_dir, "d12", 0.4, 1.9)  # d12 turns left (about 12 degrees at 1.1 s)
    shift = [still_frame(first[12], k) for k in range(12)]  # his head turned about 5 degrees
    second = [_mirror(f) for f in clip_frames(faces_dir, "d12", 2.3, 1.6)]  # his right turn, mirrored
    answers = _send(b, cap, first + shift + second, until_done=False)  # (the attacker ignores "done")
    assert answers[0].status_code == 200
    bodies = [r.get_json() for r in answers if r.status_code == 200]
    assert any(a["liveness"]["moves_done"] == 1 for a in bodies)  # liveness saw the first move
    assert gates and gates[0][2] is False, gates  # someone else's face: the gate said no
    spans = sorted({s for _, s, _ in gates})
    assert len(spans) == 1, spans  # one move judged: no second face's move is judged in this capture
    assert all(a["liveness"]["moves"] == ["turn_left"] for a in bodies)
    # the failed gate is a counted attempt at once (before any finish), and its answer ends the capture
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    k = next(i for i, a in enumerate(bodies) if a["liveness"]["moves_done"] == 1)
    assert bodies[k]["done"] is True
    fin = b.finish(cap).get_json()
    assert fin["ok"] is False and fin["failures"] == 1, fin  # reported, not charged again
    assert db.face_status.find_one({"_id": uid})["failures"] == 1
    assert [e["decision"] for e in db.audit_log.find({"event": "face.verify", "user_id": uid})] == ["no_match"]
    b.start("verify")  # (nothing of it is settled again as abandoned)
    assert db.face_status.find_one({"_id": uid})["failures"] == 1


@pytest.mark.slow
def test_the_owner_passes_the_gate_at_the_last_free_failure_and_the_match_resets_the_count(
        make_app, new_user, faces_dir, d3_turn_left):
    """Bona fide: alice with four failures (the fifth starts a waiting time) performs both moves. The gate's
    charge is the fifth failure until the finish, and the waiting time it starts is not one for her capture:
    the second move is filmed, and the match resets the count."""
    app, db, uid = _alice(make_app, new_user, d3_turn_left, face_free_failures=5)
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": 4}}, upsert=True)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    answers = _send(b, cap, clip_frames(faces_dir, "d3", 4.0, 4.0))
    assert all(r.status_code == 200 for r in answers), [r.get_json() for r in answers if r.status_code != 200]
    bodies = [r.get_json() for r in answers]
    assert bodies[-1]["liveness"]["moves"] == ["turn_left", "turn_right"], bodies[-1]
    fin = b.finish(cap).get_json()
    assert fin["ok"] is True, fin
    assert "face" in session_auth(b)["amr"]
    assert db.face_status.find_one({"_id": uid})["failures"] == 0


LOCK_AFTER = 3
CAPTURES = 3


@pytest.mark.slow
def test_parallel_captures_one_short_of_the_lock_get_one_gate_comparison(make_app, new_user, faces_dir,
                                                                         d3_turn_left, monkeypatch):
    """``CAPTURES`` sessions of alice, the count one short of the lock, each film a left turn at the same time
    (different recordings, so that none is a replay of another): at most one gate comparison in all."""
    app, db, uid = _alice(make_app, new_user, d3_turn_left, face_free_failures=LOCK_AFTER,
                          face_lock_after=LOCK_AFTER)
    gates = _gates_judged(monkeypatch)
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": LOCK_AFTER - 1}}, upsert=True)
    clips = [clip_frames(faces_dir, "d12", 0.4, 2.4), clip_frames(faces_dir, "d3", 3.0, 2.5),
             clip_frames(faces_dir, "d3", 4.0, 2.5)][:CAPTURES]
    browsers, caps = [], []
    for _ in range(CAPTURES):
        b = Browser(app)
        b.login("alice")
        cap = b.start("verify").get_json()
        db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
        browsers.append(b)
        caps.append(cap)
    barrier = threading.Barrier(CAPTURES)
    out: list = [None] * CAPTURES

    def run(i):
        barrier.wait()
        out[i] = [(r.status_code, r.get_json()) for r in _send(browsers[i], caps[i], clips[i])]
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CAPTURES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert all(o is not None for o in out)
    judged = {cid for cid, _, _ in gates}
    shown = sum(any(code == 200 and len(body["liveness"]["moves"]) == 2 for code, body in o) for o in out)
    print({"captures_judged": len(judged), "shown": shown, "gates": len(gates),
           "ends": [(o[-1][0], o[-1][1].get("error"), len(o)) for o in out],
           "status": {k: v for k, v in db.face_status.find_one({"_id": uid}).items() if k in ("failures", "locked_at")}})
    assert len(judged) <= 1, (gates, [o[-1] for o in out])


@pytest.mark.slow
def test_a_capture_left_open_after_its_gate_is_settled_with_the_gate_charge(make_app, new_user, faces_dir,
                                                                          d3_turn_left):
    """alice's gate opens (its charge is the third failure, lock_after 3) and the capture is left open: the next
    start settles it as abandoned with that charge - counted once, and it locks face sign-in."""
    app, db, uid = _alice(make_app, new_user, d3_turn_left, face_free_failures=LOCK_AFTER,
                          face_lock_after=LOCK_AFTER)
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": LOCK_AFTER - 1}}, upsert=True)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    answers = _send(b, cap, clip_frames(faces_dir, "d3", 4.0, 4.0))
    assert answers[-1].get_json()["liveness"]["moves"] == ["turn_left", "turn_right"]
    status = db.face_status.find_one({"_id": uid})
    assert status["failures"] == LOCK_AFTER and not status.get("locked_at")  # charged at the gate, still open
    # its charge started a waiting time, which refuses the user's other requests (not this capture's own) while
    # it runs; once it is over, the next start settles the capture left open
    db.face_status.update_one({"_id": uid}, {"$set": {"last_failure_at": status["last_failure_at"] - timedelta(minutes=5)}})
    b.start("verify")  # (refused or not: the capture left open is settled first)
    status = db.face_status.find_one({"_id": uid})
    assert status["failures"] == LOCK_AFTER and status.get("locked_at"), status
    entry = db.audit_log.find_one({"event": "face.verify", "user_id": uid, "decision": "abandoned"})
    assert entry["details"]["failures"] == LOCK_AFTER


@pytest.mark.slow
def test_a_refused_charge_means_no_gate_comparison(make_app, new_user, faces_dir, d3_turn_left, monkeypatch):
    """The count at the lock while face sign-in is not locked yet (another capture's charge still open): the
    gate's charge is refused, so nothing is compared and the next move is not shown."""
    app, db, uid = _alice(make_app, new_user, d3_turn_left, face_free_failures=LOCK_AFTER,
                          face_lock_after=LOCK_AFTER)
    gates = _gates_judged(monkeypatch)
    b = Browser(app)
    b.login("alice")
    cap = b.start("verify").get_json()
    db.capture_sessions.update_one({"_id": cap["capture_id"]}, {"$set": {"cue_ms": 300}})
    db.face_status.update_one({"_id": uid}, {"$set": {"failures": LOCK_AFTER}})
    answers = _send(b, cap, clip_frames(faces_dir, "d3", 4.0, 2.8))  # (the enrolled frames from 7.2 s left out)
    assert all(r.status_code == 200 for r in answers), [r.get_json() for r in answers if r.status_code != 200]
    bodies = [r.get_json() for r in answers]
    assert any(a["liveness"]["moves_done"] == 1 for a in bodies)  # the owner performed the first move
    assert gates == [] and all(a["liveness"]["moves"] == ["turn_left"] for a in bodies), gates
    assert db.face_status.find_one({"_id": uid})["failures"] == LOCK_AFTER
