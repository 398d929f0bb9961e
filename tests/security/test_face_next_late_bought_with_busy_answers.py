"""Red-team finding (fixed): "busy" answers the client provokes itself bought the late-move credit.

A frame answered 429 ``face_busy`` added the retry wait it advises (``retry_after``, 1 s) to the page's queue
(``lv_queue``), which the answer showing the next move is credited as lateness (``lv_next_late``, up to
``SHOWN_LATE_CAP_MS``). The server answers "busy" at once when one of the frame's owners already holds its
share of the face slots - the account's or its network's own frame of another capture (or another account on
the same network), a few hundred ms of work. Three such answers (the excuses' budget, ``BUSY_EXCUSED_MS``)
added 3 s to the queue while the server did nothing for them, and the client need not even wait before its
next frame: the next move came with the whole 2.5 s cap on a server that keeps up. Now a "busy" answer keeps
the frame's wait so far in the queue (it is sent again, not drained by an interval) but not the retry wait,
which is no work of the server's.

Real app, real MongoDB server, real face engine and landmark model on the owner's own clip (d3 turns left,
then right); the account's share of the worker's face slot is held as its frame of another capture would."""
from __future__ import annotations

import threading
import time

from faceweb.test_liveness_web import d3_turn_left  # noqa: F401  (fixture)
from idp.faceweb.liveness import BUSY_EXCUSED_MS, SHOWN_LATE_CAP_MS
from idp.faceweb.limits import BUSY_RETRY_S

from ._face import (  # noqa: F401
    PageQueue, app, cheap_password_hashing, engine, make_app, new_user, owner_signing_in, people,
)
from .test_face_revealed_move_answered_in_real_time import _frame

#: "busy" answers provoked once the first move is shown: the whole budget of excused retries
BUSY_ANSWERS = int(BUSY_EXCUSED_MS // (1000 * BUSY_RETRY_S))


def test_busy_answers_the_client_provokes_buy_no_lateness(make_app, new_user, faces_dir, d3_turn_left):
    db, b, frames, cap = owner_signing_in(make_app, new_user, faces_dir, d3_turn_left)
    uid = db.capture_sessions.find_one({"_id": cap["capture_id"]})["user_id"]
    slots = b.app.extensions["faceweb"]["slots"]
    provoked, page = False, PageQueue()
    for k, image in enumerate(frames):
        t = 1000.0 * k / 7.5
        if not provoked and page.answers and len(page.answers[-1]["liveness"]["moves"]) == 1:
            provoked, held, release = True, threading.Event(), threading.Event()

            def hold():  # the account's frame of another capture at work in the face slot
                held.set()
                release.wait(10)
            holder = threading.Thread(target=slots.run, args=(hold, (f"user:{uid}",)), daemon=True)
            holder.start()
            assert held.wait(10)
            try:
                for _ in range(BUSY_ANSWERS):
                    began = time.monotonic()
                    r = _frame(b, cap, image, t)
                    took = (time.monotonic() - began) * 1000.0
                    assert r.status_code == 429 and r.get_json()["error"] == "face_busy", r.get_json()
                    page.queue += took  # the same frame again: its wait so far stays in the queue
            finally:
                release.set()
                holder.join()
        began = time.monotonic()
        r = _frame(b, cap, image, t)  # at once: the advised retry wait is not kept
        if page.answered(r, (time.monotonic() - began) * 1000.0):
            break
    explained = page.explained
    assert provoked and explained is not None, [a["liveness"]["moves"] for a in page.answers]
    late = db.capture_sessions.find_one({"_id": cap["capture_id"]})["lv_next_late"]
    # the "busy" answers cost the server nothing: the credit is at most what its times explain
    assert late <= min(explained, SHOWN_LATE_CAP_MS) + 50.0, {"credited": late, "explained": round(explained)}
