"""One account (its own password, its own first enrollment, never finished) or one network must not keep every
face slot of a worker busy. Before, it could: the slots admitted ``IDP_FACE_CONCURRENCY`` frames at work and as
many waiting, with no share per account or address, so two frames in flight from one account filled a default
worker (concurrency 1), and anyone else's frame was refused ``face_busy`` at once. Now one owner (an account, a
client network) holds at most half of them (``FaceSlots``). The per-account limit (600 frames per 10 minutes) is far above what keeping two frames in
flight needs when a frame takes a second to analyse (a full-HD picture is accepted: IDP_MAX_IMAGE_PIXELS is
1920x1080, the page sends 640x480). A sign-in capture whose moves were shown and whose later frames are refused
busy cannot complete, and is then charged as a failed attempt (incomplete after its moves were shown), so a
flood also pushes the owners who try to sign in meanwhile towards the lock.

Real app, real MongoDB, real face engine, real photos.
"""
from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from idp import get_db

from ._face import Browser, app, cheap_password_hashing, engine, enroll_user, make_app, new_user, people  # noqa: F401


def _big_frames(faces_dir):
    """Full-HD face pictures, each with other pixels (one pixel changed), as many as asked."""
    base = Image.open(faces_dir / "face_recognition_examples" / "obama" / "obama-1080p.jpg").convert("RGB")
    assert base.size[0] * base.size[1] <= 1920 * 1080
    k = 0
    while True:
        img = base.copy()
        img.putpixel((k % base.size[0], 0), (k % 251, (k * 7) % 253, (k * 13) % 255))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        k += 1
        yield buf.getvalue()


MALLORY_NET, ALICE_NET = "198.51.100.9", "203.0.113.7"


def _flooder(app, stop: threading.Event, frames, lock, refused: list):
    """One session of mallory: enrollment captures (never finished), a frame as soon as the last is answered
    (each 429 appended to ``refused``)."""
    b = Browser(app)
    b.client.environ_base["REMOTE_ADDR"] = MALLORY_NET
    b.login("mallory")
    b.consent()
    cap = b.start("enroll").get_json()
    answers = []
    while not stop.is_set():
        with lock:
            image = next(frames)
        r = b.frame(cap, image)
        answers.append(r.status_code)
        if r.status_code == 429:
            refused.append(r.status_code)
        if r.status_code == 409 or (r.status_code == 200 and r.get_json()["frames"] >= 55):
            cap = b.start("enroll").get_json()
    return answers


@pytest.mark.slow
def test_one_account_cannot_take_every_face_slot_of_a_worker(make_app, new_user, people, faces_dir):
    # default slots: 1 frame at work per worker, 1 waiting; a waiting frame may wait long here (this test is
    # about the share, not about how long a full-HD frame takes on a loaded machine)
    app = make_app(face_busy_wait_ms=60000)
    enroll_user(app, new_user, people["alice"])  # alice, the owner, enrolled
    new_user("mallory")  # the attacker's own account (registration), consented, never enrolled
    db = get_db(app)
    alice = Browser(app)
    alice.client.environ_base["REMOTE_ADDR"] = ALICE_NET
    alice.login("alice")
    cap = alice.start("verify").get_json()
    slots = app.extensions["faceweb"]["slots"]

    stop, lock = threading.Event(), threading.Lock()
    frames = _big_frames(faces_dir)
    refused: list = []
    threads = [threading.Thread(target=_flooder, args=(app, stop, frames, lock, refused)) for _ in range(2)]
    for t in threads:
        t.start()
    answers = []
    try:
        for _ in range(6):
            deadline = time.monotonic() + 60
            seen = len(refused)
            # both of mallory's sessions have a frame in flight (admitted: she holds every slot), or one of
            # them was just refused its share while the other's frame is at work
            while time.monotonic() < deadline and not (
                    slots._admitted >= 2 or (slots._admitted and len(refused) > seen)):
                time.sleep(0.005)
            r = alice.frame(cap, people["alice"][len(answers) % 3 + 5])
            answers.append((r.status_code, (r.get_json() or {}).get("error")))
    finally:
        stop.set()
        for t in threads:
            t.join()
    # mallory stayed far within her limits (600 frames per 10 minutes)
    counted = sum(d.get("count", 0) for d in db.throttles.find({"_id": {"$regex": "^face_frames:user:"}}))
    assert counted < 600
    # secure: alice's frames are analysed whatever one other account sends
    assert all(code == 200 for code, _ in answers), answers


def test_an_owner_holds_at_most_half_of_the_slots():
    """The share itself, on a worker with one slot at work and one waiting: a second frame of the same account
    (or network) is refused at once while its first is admitted; another owner's frame waits for the slot
    and is analysed; the share is given back when the frame is done."""
    from idp.faceweb.capture_sessions import CaptureError
    from idp.faceweb.limits import FaceSlots

    slots = FaceSlots(1, wait_s=30)
    release, working = threading.Event(), threading.Event()

    def held():
        working.set()
        release.wait(30)
        return "first"
    first = threading.Thread(target=lambda: results.append(slots.run(held, ("user:m", "net:n1"))))
    results: list = []
    first.start()
    assert working.wait(30)
    for owners in (("user:m", "net:n2"), ("user:m2", "net:n1")):  # the same account, the same network
        with pytest.raises(CaptureError) as busy:
            slots.run(lambda: "second", owners)
        assert busy.value.code == "face_busy"
    other = threading.Thread(target=lambda: results.append(slots.run(lambda: "other", ("user:a", "net:n3"))))
    other.start()
    time.sleep(0.2)
    release.set()
    first.join(30)
    other.join(30)
    assert sorted(results) == ["first", "other"]
    assert slots.run(lambda: "again", ("user:m", "net:n1")) == "again" and slots._admitted == 0
