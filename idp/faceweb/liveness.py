"""Liveness in the capture sessions: challenge, per-frame observations, replay store.

Glue between the capture API (views.py), the capture sessions (capture_sessions.py) and the pure
presentation-attack package :mod:`idp.liveness`. No Flask here.

Per capture session (``capture_sessions`` document) while liveness is on:

* ``challenge``: drawn (``secrets.SystemRandom``) from :func:`drawable`, the
  configuration's challenges, when the session starts; ``None`` = liveness off for this capture.
* ``lv_t0``: ``{server, client}`` ms timestamps of its first frame (the burst's time origin).
* ``cue_ms``: the drawn cue; ``lv_cue_t``: set by the first frame with a face, whose answer names
  the moves (:func:`revealed`): the cue actually used, ``max(cue_ms, that frame's time)``, the frame's
  time no later than the server received it (:func:`shown_at`).
* ``lv_cue_late``: how late the answer showing the moves reached the page (:func:`shown_late_ms`);
  ``lv_all_shown``: at sign-in, the next moves were shown; ``lv_next_late``: how late the answer showing
  them was. The time limits grow by both (:func:`reveal_delay`).
* ``lv_ref_thumb``: the first frame's 32x32 grey thumbnail (1 KB) - the only picture-derived data
  kept, and only until the session finishes (removed then, like the embeddings; the session TTL
  removes it otherwise). ``lv_thumb_diff``: the running static-feed statistic (max mean |diff| of a
  frame's thumbnail against it), so no other thumbnail is ever stored.
* ``lv_dups``: frames byte-identical (same decoded pixels) to an earlier frame of the same session.
* each frame: ``t_ms`` (its time in the burst), ``w``/``h``, ``box``/``landmarks`` (already stored),
  ``dup`` for an in-session duplicate, ``dense``: the 468 3-D landmarks of :mod:`idp.liveness.landmarks`
  (:func:`dense_fields`; int16 eighth-pixels relative to the box centre ``dense_c``, base64, 3.7 KB) - geometry, not a picture.

Replay store (``liveness_frames``, migrations 0005 and 0014): the sha256 of the decoded pixels
(:func:`idp.liveness.fingerprint.pixel_digest`) of every frame a session accepted (but frames of one colour,
:func:`one_colour`; a frame the capture refused takes its fingerprint back), unique, kept 30 days, naming its
user and erased with their face data. A frame
whose hash is already there from *another* session is a replay if a face is found in it (a picture without
one, such as a virtual camera's placeholder, is evidence of nothing and goes on as a frame without a face).
A whole-frame perceptual hash is not used: it also matches different frames of the same scene
(docs/liveness.md).
"""
from __future__ import annotations

import base64
import dataclasses
import math
import secrets
from datetime import timedelta

import numpy as np
from pymongo.errors import DuplicateKeyError

from idp.liveness import (CaptureDecision, CaptureState, FrameObservation, LivenessResult, LivenessSettings,
                          capture_window_ms, challenge_instruction, challenge_moves, challenge_pool, decide_capture,
                          hint_message, live_hint, sequences)
from idp.liveness.fingerprint import (FACE_HASH_MAX_BITS, HELD_POSE_NEIGHBOURS, face_hash, neighbour_counts, pixel_digest,
                                      thumbnail)
from idp.liveness.fingerprint import near_copy as _near

from . import capture_sessions

REPLAY_TTL_DAYS = 30


def window_ms(challenge: str | None) -> int:
    """How long the page films for this challenge (:func:`idp.liveness.capture_window_ms`)."""
    return capture_window_ms(challenge)


#: Frame interval the page uses while liveness is on (~6.7 fps: 20-30 frames per burst).
INTERVAL_MS = 150
#: How far the browser's clock may run ahead of the server's between two frames of one capture
#: (upload latency of the first frame); beyond that the server's own receive time bounds it.
CLOCK_SLACK_MS = 2000
#: How far behind the server's clock a frame's own time may be (its upload lag: the page queues frames
#: while the server is busy); an older claim is taken as this late. Generous: a page's backlog reaches it
#: only on a server some 5 times slower than the filming over a whole sign-in (about 0.7 s a frame). The
#: pause rule below is the tight one; this is the one bound on what frames a client makes slow hide in all.
MAX_UPLOAD_LAG_MS = 30000
#: The page sends its next frame as soon as the previous answer is in (a queued one at once, else the next
#: one filmed): the server waits at most about a frame interval between answering one frame
#: (``lv_answered``) and receiving the next. A longer wait is elapsed burst time whatever the frames' own
#: times claim (less this slack: a slow network, a retry after "busy"): a client that pauses after seeing
#: a move shown cannot hide it. The slack is one budget per capture, not per frame (see :func:`paced_ms`):
#: frames sent every few seconds during a pause, each stamped a few ms after the last, do not hide it.
IDLE_SLACK_MS = 2000
#: The page shows the instruction (the cue) this long after its first frame, drawn per capture, uniform
#: in [CUE_MIN_MS, CUE_MAX_MS]; a turn reached before cue + min_reaction_ms fails (challenge_too_early).
CUE_MIN_MS, CUE_MAX_MS = 200, 500


def drawable(config) -> tuple[str, ...]:
    """The challenges ``config`` draws from, each equally likely: its ``IDP_LIVENESS_CHALLENGES`` pool, else
    :func:`idp.liveness.sequences` of ``IDP_LIVENESS_MOVES`` (1-4) moves."""
    pool = challenge_pool(getattr(config, "liveness_challenges", ""))
    return pool or sequences(max(1, min(int(getattr(config, "liveness_moves", 2) or 2), 4)))


def new_challenge(config) -> str | None:
    """A fresh unpredictable challenge for a capture session, or None when liveness is off."""
    if not getattr(config, "liveness_enabled", True):
        return None
    return secrets.SystemRandom().choice(drawable(config))


def new_cue_ms() -> int:
    """When the page shows the instruction, in ms after its first frame (unpredictable)."""
    return CUE_MIN_MS + secrets.randbelow(CUE_MAX_MS - CUE_MIN_MS + 1)


def instruction(challenge: str | None) -> str | None:
    return challenge_instruction(challenge) if challenge else None


def settings(doc: dict | None = None) -> LivenessSettings:
    """The decision's settings for a capture: the defaults, with the passive threshold the capture was
    created with (``lv_passive_min``; 0 = the passive check is off for it). (:func:`decide` lengthens
    the time limits of whatever settings it is given by :func:`reveal_delay`.)"""
    return LivenessSettings(min_passive_score=float((doc or {}).get("lv_passive_min") or 0.0))


def _lengthened(s: LivenessSettings, doc: dict) -> LivenessSettings:
    """``s`` with the time limits counted from the moment the moves were shown (later than the cue when
    the first face came late)."""
    delay = reveal_delay(doc)
    if not delay:
        return s
    return dataclasses.replace(s, challenge_window_ms=s.challenge_window_ms + delay,
                               max_duration_ms=s.max_duration_ms + delay)


# --- when the moves are shown ------------------------------------------------------------------------
#
# A capture's moves are not in its start answer: they are shown in the answer to its first frame with a
# face (:func:`reveal_at`), and that frame's time in the burst, if later than the drawn cue, becomes
# the cue (``lv_cue_t``). At sign-in, the capture is an attempt from then on (see attempts.py): reading the
# pending challenge is never free, and a frame without a face (or a script without a camera) learns
# nothing about it. At sign-in the moves are shown one at a time: the next only once the moves shown so
# far were performed and the face frames of the last turn match the enrolled face (the capture API
# checks it, see :func:`next_move_spans`; ``lv_all_shown``). So nobody learns the whole sequence without
# performing its first move with the owner's face: a recording of the owner that fits the first move
# only is burnt before its second move is known. Enrollment shows every move at once.

def revealed(doc: dict) -> bool:
    """Whether the capture's moves were shown (see :func:`reveal_at`)."""
    return doc.get("lv_cue_t") is not None


def moves_of(doc: dict) -> list[str]:
    return str(doc["challenge"]).split("+") if doc.get("challenge") else []


def shown_count(doc: dict) -> int:
    """How many of the capture's moves were shown: none before :func:`revealed`; then all of them at
    enrollment, the first one at sign-in until ``lv_all_shown``."""
    n = len(moves_of(doc))
    if not revealed(doc):
        return 0
    return n if doc.get("purpose") != "verify" or doc.get("lv_all_shown") else min(1, n)


def all_shown(doc: dict) -> bool:
    return revealed(doc) and shown_count(doc) >= len(moves_of(doc))


def shown_challenge(doc: dict) -> str | None:
    """The challenge as the capture's answers may name it: the moves shown so far (None before any)."""
    k = shown_count(doc)
    return "+".join(moves_of(doc)[:k]) if k else None


def shown_instruction(doc: dict) -> str | None:
    """The instruction for the moves shown so far; while more are to come, it says so."""
    text = instruction(shown_challenge(doc))
    if text and not all_shown(doc):
        text += " The next move is shown after it."
    return text


def cue_of(doc: dict) -> float:
    """When the instruction appeared, ms after the first frame: the drawn cue, or the moment the moves
    were shown if later; infinite while they were not (every move so far is then too early)."""
    return float(doc["lv_cue_t"]) if revealed(doc) else math.inf


def reveal_delay(doc: dict) -> float:
    """How much later than planned the moves were shown (0 until they are): the first ones after the drawn
    cue (a face found late) plus how late the answer showing them reached the page (``lv_cue_late``), and
    at sign-in how late the answer showing the next ones did (``lv_next_late``; both
    :func:`shown_late_ms`). The filming window, the time limits and the frame budget grow by as much, so a
    person whose face was not found at first, or whose instruction a busy server answered late, loses no
    time."""
    if not revealed(doc):
        return 0.0
    return max(0.0, float(doc["lv_cue_t"]) - float(doc.get("cue_ms") or 0)) + _made_up_late(doc)


def _made_up_late(doc: dict) -> float:
    """The lateness of the answers that showed moves made up for: theirs summed, at most SHOWN_LATE_CAP_MS
    over the capture (so a client that makes both look late gains the cap once)."""
    late = float(doc.get("lv_cue_late") or 0.0) + (float(doc.get("lv_next_late") or 0.0) if all_shown(doc) else 0.0)
    return min(SHOWN_LATE_CAP_MS, late)


#: At most this much of the lateness of an answer that shows moves (:func:`shown_late_ms`) is made up for:
#: the next move's answer came 1.4-2.3 s late on a server whose analysis (210-250 ms a frame) fell behind
#: the page's filming (docs/liveness.md, "Moves shown late"). The page films on past its window by as much
#: while a move is still to be shown (``late_max_ms`` of the start answer).
SHOWN_LATE_CAP_MS = 2500.0


def shown_late_ms(doc: dict, t_ms: float, due_ms: float, received_ms: float, now_ms: float) -> float:
    """How late an answer showing moves reaches the page, against the moment ``due_ms`` in the burst it is
    due (the cue; for the next move at sign-in, the frame that completed the one before): the answer to the
    frame filmed at ``t_ms``, whose body the server had at ``received_ms`` and which it answers at ``now_ms``
    (server clock), comes :func:`answer_delay_ms` after that frame was filmed. At most SHOWN_LATE_CAP_MS. A
    page that fell behind (its frames queue while the server is slower than its filming) shows the moves
    that much late, and the person starts that much later; a server that keeps up answers within its own
    analysis time.

    Only the server's own work is counted, never the client's claims or waits: a client that waits between
    frames and stamps them as if it had not (the frame-time slack) makes nothing look late, and neither
    does a body sent slowly. What it can do is make the server genuinely busy (its other accounts' frames
    are bounded by the face slots and rate limits), as any load does."""
    return round(min(SHOWN_LATE_CAP_MS, max(0.0, float(t_ms) + answer_delay_ms(doc, received_ms, now_ms)
                                             - float(due_ms))), 1)


def answer_delay_ms(doc: dict, received_ms: float, now_ms: float) -> float:
    """How long after it was filmed the answer, sent at ``now_ms``, to a frame received at ``received_ms``
    reaches a page that films every INTERVAL_MS and sends its frames one at a time as the answers come:
    the time the frame waited in the page's queue (``lv_queue``, :func:`answered_update`) plus the server's
    time on it (from its body received, or from the previous answer if that came later). Network time is
    not counted (the server cannot tell it from a client's wait): an underestimate on a slow link."""
    start = max(float(received_ms), float(doc.get("lv_answered") or 0.0))
    return float(doc.get("lv_queue") or 0.0) + max(0.0, float(now_ms) - start)


def frame_budget(doc: dict) -> int:
    """Frames the capture may hold: MAX_FRAMES_PER_CAPTURE counted from the moves shown (``lv_pre``: the
    frames received before them, e.g. while no face was in view), so a late first face loses no time, and
    as many more as a page films while an answer showing moves came late (:func:`shown_late_ms`)."""
    return (capture_sessions.MAX_FRAMES_PER_CAPTURE + int(doc.get("lv_pre") or 0)
            + math.ceil(_made_up_late(doc) / INTERVAL_MS))


def reveal_at(doc: dict, t_ms: float) -> float:
    """The cue of a capture whose moves are shown by a frame filmed at ``t_ms`` (:func:`shown_at`)."""
    return round(max(float(doc.get("cue_ms") or 0), float(t_ms)), 1)


def shown_at(doc: dict, t_ms: float, server_ms: float) -> float:
    """When, in the burst, the frame received at ``server_ms`` that shows the moves was filmed, as far as the
    server can tell: its time ``t_ms``, but no later than the server's own time since the capture's first
    frame arrived (:func:`received_in_burst`). A frame's time may run ahead of the server's clock by
    CLOCK_SLACK_MS (an honest page's first upload slower than the next); a client that stamps its first
    face frame ahead must not have its face "found late", and the window lengthened, by its claim alone."""
    return min(float(t_ms), received_in_burst(doc, server_ms))


def received_in_burst(doc: dict, server_ms: float) -> float:
    """The server's time from the arrival of the capture's first frame (``lv_t0``) to ``server_ms``; 0 for
    the first frame itself."""
    t0 = doc.get("lv_t0")
    return float(server_ms) - float(t0["server"]) if t0 else 0.0


# --- replay store --------------------------------------------------------------------------------

def exact_fingerprint(rgb: np.ndarray) -> str:
    """The replay store's key of a frame: sha256 (hex) of its decoded pixels (:func:`pixel_digest`)."""
    return pixel_digest(rgb)


NEW, DUPLICATE, REPLAYED = "new", "duplicate", "replayed"


def one_colour(rgb: np.ndarray) -> bool:
    """Whether every pixel of the frame has the same colour: a camera starting up, a closed privacy shutter, a
    page that filmed before the camera's first picture. Such a frame is the same for every camera and holds
    no face, so it is never a replay, nor a repeat within a capture (see :func:`remember_frame`)."""
    a = np.asarray(rgb)
    flat = a.reshape(-1, a.shape[-1]) if a.ndim == 3 else a.reshape(-1, 1)
    return bool(flat.size) and bool((flat == flat[0]).all())


def remember_frame(db, fingerprint: str, capture_id: str, user_id: str, now) -> str:
    """Record a frame's fingerprint for this capture of ``user_id``: NEW, DUPLICATE (seen earlier in the same
    capture) or REPLAYED (seen in another capture). One atomic insert against the unique index. The row names
    its user: derived from the user's face pictures, it goes with their face data (:func:`forget_frame`,
    ``erasure.delete_face_data``, account deletion). (The capture API does not call it for a frame of
    :func:`one_colour`: every such frame is NEW and kept nowhere.)"""
    try:
        db.liveness_frames.insert_one({"fingerprint": fingerprint, "capture_id": capture_id, "user_id": user_id,
                                       "created": now, "expires": now + timedelta(days=REPLAY_TTL_DAYS)})
        return NEW
    except DuplicateKeyError:
        seen = db.liveness_frames.find_one({"fingerprint": fingerprint}, {"capture_id": 1})
        return DUPLICATE if seen is not None and seen.get("capture_id") == capture_id else REPLAYED


def forget_frame(db, fingerprint: str, capture_id: str) -> None:
    """Take back the fingerprint :func:`remember_frame` just stored (NEW) for a frame the capture then refused
    (out of order, over its budget, the capture gone): only frames a capture accepted are kept."""
    db.liveness_frames.delete_one({"fingerprint": fingerprint, "capture_id": capture_id})


# --- per-frame ----------------------------------------------------------------------------------

def paced_ms(doc: dict, server_ms: float) -> float:
    """The least burst time this capture's requests account for, up to one received at ``server_ms``: the
    sum of :func:`pace_ms` over its requests (``lv_paced`` holds the sum before this one).

    A page films every INTERVAL_MS and sends each frame once it is filmed and the previous answer is in.
    While it keeps up, its requests arrive an interval apart and the server waits less than an interval
    for each: each adds an interval, as much as its frame's own time advances. Once it falls behind (a slow
    server, or a round trip plus the server's work over an interval) it sends a queued frame as each answer
    comes back: requests arrive more than an interval apart, but each still adds one interval, plus its
    round trip beyond an interval (so a round trip of up to INTERVAL_MS moves no frame; longer ones, an
    intercontinental or satellite link, move later frames once the slack is spent). A client that pauses
    adds the pause, less the server's work on what it sends meanwhile: a request every second adds most of
    the second, and a request every interval adds the interval while claiming a few ms."""
    return float(doc.get("lv_paced") or 0.0) + pace_ms(doc, server_ms)


def pace_ms(doc: dict, server_ms: float) -> float:
    """What a request of this capture received at ``server_ms`` adds to :func:`paced_ms`: the time since
    the previous request's arrival (``lv_arrived``), at most INTERVAL_MS, plus the server's wait since
    its latest answer (``lv_answered``) beyond INTERVAL_MS; 0 before the first answer."""
    answered, arrived = doc.get("lv_answered"), doc.get("lv_arrived")
    if answered is None:
        return 0.0
    waited = max(0.0, server_ms - float(answered) - INTERVAL_MS)
    return waited if arrived is None else min(max(0.0, server_ms - float(arrived)), INTERVAL_MS) + waited


#: A capture's requests answered "busy" excuse the page's wait before it sends the frame again, up to this
#: much in all (a few retries on a loaded server); beyond it the wait counts like any other.
BUSY_EXCUSED_MS = 3000.0


def answered_update(doc: dict, server_ms: float, answered_ms: float, retry_ms: float | None = None,
                    received_ms: float | None = None) -> dict:
    """The capture document's update once a request of it, received at ``server_ms``, is answered at
    ``answered_ms``, whatever the answer: its pace (:func:`pace_ms`) into ``lv_paced``, its arrival and
    answer, and for a frame the server served (its body in at ``received_ms``) the queue the page's next
    frame meets (``lv_queue``: the page films every INTERVAL_MS, so a frame the server took longer on
    leaves the next one waiting the difference, and a shorter one lets the queue drain - Lindley's recursion
    on the server's own times, see :func:`answer_delay_ms`). A request refused (``received_ms`` None: bad
    input, "busy") leaves the queue as it is: a client that provokes refusals - parallel requests answered
    "busy", pictures refused after an expensive decode - must not make its answers look late (a page under
    a server busy with others then gets less than its lateness, never more). ``retry_ms``: it was answered
    "busy" and the page sends the frame again that much later; the wait until then is excused (the answer
    counts as given then) while the capture's excuses stay within BUSY_EXCUSED_MS, so that "busy" answers,
    which a client can provoke, cannot hide a pause."""
    inc = {"lv_paced": pace_ms(doc, server_ms)}
    update = {"$inc": inc}
    if received_ms is not None:
        queue = max(0.0, answer_delay_ms(doc, received_ms, answered_ms) - INTERVAL_MS)
        update["$set"] = {"lv_queue": round(min(queue, MAX_UPLOAD_LAG_MS), 1)}
    if retry_ms is not None and float(doc.get("lv_busy_excused") or 0.0) + retry_ms <= BUSY_EXCUSED_MS:
        inc["lv_busy_excused"] = retry_ms
        answered_ms += retry_ms
    update["$max"] = {"lv_answered": answered_ms, "lv_arrived": server_ms}
    return update


def frame_time(doc: dict, server_ms: float, client_ts: float | None) -> tuple[float, dict | None, float]:
    """The frame's time in the burst (ms since the first frame), for the first frame the origin to store,
    and the capture's shift (``lv_shift``, see below) after this frame.

    The browser's capture time is used (frames are filmed at a steady rate and uploaded as the server
    keeps up), bounded by the server's receive times: at most :data:`CLOCK_SLACK_MS` ahead, so that a
    client cannot stretch a burst; and never earlier than :data:`MAX_UPLOAD_LAG_MS` before it arrived, nor
    than the latest frame's time plus the server's wait since it answered that frame
    (``lv_answered``) less :data:`IDLE_SLACK_MS`, nor than the burst time the capture's requests account
    for (:func:`paced_ms`) less the same slack, so that a client cannot hide a pause, in one piece or
    spread over frames sent during it. A frame held back
    by those lower bounds moves every later frame of the capture by as much (``lv_shift`` only grows), so
    the frames stay in their filming order."""
    t0 = doc.get("lv_t0")
    shift = float(doc.get("lv_shift") or 0.0)
    if not t0:
        return 0.0, {"server": server_ms, "client": client_ts}, shift
    st = received_in_burst(doc, server_ms)
    if client_ts is None or t0.get("client") is None:
        return st, None, shift
    claimed = client_ts - float(t0["client"])
    floor = st - MAX_UPLOAD_LAG_MS
    last_t = max((float(f["t_ms"]) for f in doc.get("frames", []) if f.get("t_ms") is not None), default=None)
    if last_t is not None and doc.get("lv_answered") is not None:
        floor = max(floor, last_t + (server_ms - float(doc["lv_answered"])) - IDLE_SLACK_MS,
                    paced_ms(doc, server_ms) - IDLE_SLACK_MS)
    shift = max(shift, floor - claimed)
    return min(claimed + shift, st + CLOCK_SLACK_MS), None, shift


DENSE_SCALE = 8.0  # stored dense landmarks: int16 of 1/8 pixel, relative to the face box centre


def dense_fields(rgb: np.ndarray, analysis) -> dict:
    """The frame fields the 3-D check and the perceptual replay store need: ``{"dense", "dense_c",
    "fh", "fhm"}`` for a frame with a face (``fh``: :func:`idp.liveness.fingerprint.face_hash` of the
    dense-landmark-aligned face crop, 64 hex digits; ``fhm``: of its mirror image, looked up by
    :func:`near_copy` and not stored), else {}. Raises
    :class:`idp.liveness.landmarks.LandmarkModelError` if the model cannot be used (fail closed)."""
    from idp.liveness.landmarks import shared_landmarker

    box = getattr(analysis, "box", None) if analysis is not None else None
    if not box:
        return {}
    landmarker, five = shared_landmarker(), getattr(analysis, "landmarks", None)
    points = landmarker(rgb, box, five).points
    return {**encode_dense(points, box), "fh": f"{face_hash(rgb, points):064x}",
            "fhm": f"{mirrored_face_hash(rgb, box, five, landmarker):064x}"}


def mirrored_face_hash(rgb: np.ndarray, box, five: dict | None, landmarker) -> int:
    """The face hash of the frame's mirror image, with that image's own dense landmarks (the landmark
    model's points on a mirrored face are no mirror image of its points on the face: a crop aligned by
    them, or the stored crop flipped, is 40-55 bits from the hash of the picture mirrored; this one 8-22
    on frames of the shared clips, as near as a recording filmed again). A frame of a recording played
    mirrored gives the stored frame's hash here. The mirror image's box and eyes are the frame's, mirrored
    (the landmark model alone runs again, a few ms)."""
    w = rgb.shape[1]
    x, y, bw, bh = (float(v) for v in box)
    eyes = None
    if five and "left_eye" in five and "right_eye" in five:  # (the image-left eye becomes the image-right one)
        eyes = {"left_eye": (w - float(five["right_eye"][0]), float(five["right_eye"][1])),
                "right_eye": (w - float(five["left_eye"][0]), float(five["left_eye"][1]))}
    flipped = np.ascontiguousarray(np.asarray(rgb)[:, ::-1])
    return face_hash(flipped, landmarker(flipped, (w - x - bw, y, bw, bh), eyes).points)


def passive_fields(doc: dict, rgb: np.ndarray, analysis) -> dict:
    """``{"ps": score}``: MiniFASNet's "real" probability of the face (idp.liveness.antispoof) for every
    frame with a face of a capture whose passive check is on, else {}. Every face frame is scored because
    the decision judges them all (a capture cannot open with a live face and go on with a print).
    Raises :class:`idp.liveness.antispoof.AntiSpoofModelError` if the model cannot be used (fail closed)."""
    box = getattr(analysis, "box", None) if analysis is not None else None
    if not box or float(doc.get("lv_passive_min") or 0.0) <= 0:
        return {}
    from idp.liveness.antispoof import shared_antispoof
    return {"ps": round(shared_antispoof().score(rgb, box), 4)}


# --- perceptual replay store (per user) -------------------------------------------------------------
#
# ``liveness_face_hashes`` (migrations 0007, 0010, 0012): face hashes of a user's frames. Sign-in frames are
# stored as they arrive (:func:`remember_frame_hash`), flagged ``turned`` from their own geometry and
# kept as a failed capture's unless their capture is accepted; an accepted enrollment's frames are stored
# when it is accepted (with ``near``, the held-pose count). The newest FACE_HASHES_KEPT accepted ones are
# kept per user, failed ones until their lifetime (REPLAY_TTL_DAYS) ends; all go with the face data. A
# frame of a new capture within FACE_HASH_MAX_BITS of a stored one that takes part (turned, or a passing
# pose), or, if turned itself, of the motion between two consecutive stored turned frames (a replay is
# filmed at other moments), is a near copy; FACE_HASH_MIN_FRAMES such frames refuse the capture as a replay, a
# counted failure. Measured in docs/liveness.md (benchmarks/liveness_replay_store.py,
# benchmarks/liveness_retry.py).

#: Frames of one capture that must be near copies of earlier stored frames before it is refused
#: (LivenessSettings.near_copy_frames; FACE_HASH_MAX_BITS is idp.liveness.fingerprint's).
FACE_HASH_MIN_FRAMES = LivenessSettings.near_copy_frames
#: Face hashes kept per user and kind (accepted / failed; the newest; about 5 captures of 30 frames).
FACE_HASHES_KEPT = 150


#: A sign-in frame's pose counts as *turned* (its face hash takes part in replay checks) when its
#: dense-landmark yaw or pitch (a turn or a tilt) is this far from the capture's first face frame: just
#: under the decision's return threshold (6 degrees), so the frames of a move from its start count, and a
#: held pose's jitter does not.
#: Decided when the frame arrives, from its own geometry, so nothing sent later can change which stored
#: frames count.
TURNED_DEG = 5.0
#: A 256-bit face hash is indexed as 17 bands (16 of 15 bits, one of 16): two hashes within
#: FACE_HASH_MAX_BITS (16) differ in at most 16 bands, so they agree exactly on at least one. A lookup
#: of failed captures' frames asks the index for rows sharing a band and checks those alone: it sees
#: every stored frame, however many newer ones there are (they are never evicted by count, only by their
#: 30-day lifetime), at the cost of the few rows that share a band by chance.
BANDS = 17
assert FACE_HASH_MAX_BITS < BANDS


def hash_bands(fh: str) -> list[int]:
    """The indexed bands of a face hash (64 hex digits), each tagged with its position."""
    v, out, shift = int(fh, 16), [], 0
    for k in range(BANDS):
        width = 16 if k == BANDS - 1 else 15
        out.append((k << 16) | ((v >> shift) & ((1 << width) - 1)))
        shift += width
    return out


def turned_pose(ref: dict | None, fields: dict) -> bool:
    """Whether a new frame (``fields``: its :func:`dense_fields`) is turned or tilted by at least
    :data:`TURNED_DEG` away from ``ref``, the dense fields of the capture's reference frame (its first face frame, pinned
    once per capture by the capture API, so that frames sent in parallel all use the same one)."""
    from idp.liveness import rigidity
    cur = _dense_of(fields) if fields.get("dense") else None
    ref3 = _dense_of(ref) if ref and ref.get("dense") else None
    if cur is None or ref3 is None:
        return False
    pose = rigidity.compare(ref3, cur)
    return max(abs(float(pose["yaw"])), abs(float(pose["pitch"]))) >= TURNED_DEG


def _counts(row: dict) -> bool:
    """A stored hash takes part in replay checks: a turned sign-in frame (``turned``), or, for rows
    stored a whole capture at once, a passing pose (``near`` <= HELD_POSE_NEIGHBOURS; no count: yes)."""
    if "turned" in row:
        return bool(row["turned"])
    return int(row.get("near") or 0) <= HELD_POSE_NEIGHBOURS


def near_copy(db, user_id: str, fh: str | None, exclude: str | None = None, *, segments: bool = True,
              mirrored: str | None = None) -> str | None:
    """Whether the face hash ``fh`` (or ``mirrored``, the frame's mirror image's, ``fhm`` of
    :func:`dense_fields`: a recording played mirrored matches the template, and its left turn is a right
    turn) is a near copy of this user's other captures (``exclude``: the
    capture the frame belongs to): within FACE_HASH_MAX_BITS of a stored hash that takes part
    (:func:`_counts`), or (with ``segments``: the capture API asks for a frame turned from its capture's
    first face frame) of the motion between a stored sign-in frame and the frame filmed before it
    (:func:`_segment`; :func:`idp.liveness.fingerprint.segment_distance`). A replay is filmed anew, at
    other moments than the stored frames, and during a turn two frames 150 ms apart are far apart, so
    copies of single frames alone catch only some replays. ``"accepted"`` (of an accepted capture,
    which wins), ``"failed"`` (only of other captures'), or None.

    One read through the band index (:func:`hash_bands`; both ends of a segment are indexed) sees every
    stored frame within the distance, however many others there are, and a segment when ``fh`` shares a
    band with one of its ends. The query names the index's fields only (user and band), so that every
    database serves it from the index (the embedded SecantusDB scans the whole collection for any other
    field, and the store holds every sign-in frame of every user for 30 days); kind, capture and
    participation are sorted out here, among the few rows that share a band by chance. Rows that never take
    part are stored without bands (:func:`row_bands`), so a pose held still in many captures is not read."""
    hashes = [h for h in dict.fromkeys((fh, mirrored)) if h] if fh else []
    if not hashes:
        return None
    rows = [d for d in db.liveness_face_hashes.find(
        {"user_id": user_id, "bands": {"$in": [b for h in hashes for b in hash_bands(h)]}},
        {"hash": 1, "near": 1, "turned": 1, "prev": 1, "failed": 1, "capture_id": 1})
        if d.get("capture_id") != exclude]
    kinds = (("accepted", [d for d in rows if d.get("failed") is not True]),
             ("failed", [d for d in rows if d.get("failed") is True and d.get("turned") is not False]))
    for kind, found in kinds:
        if any(_near(h, [d["hash"] for d in found if _counts(d)], FACE_HASH_MAX_BITS,
                     segments=[(d["hash"], d["prev"]) for d in found if segments and _segment(d)]) for h in hashes):
            return kind
    return None


def row_bands(row: dict) -> list[int]:
    """The bands a stored row is indexed under (``bands``): its hash's, and for a row whose motion from the
    previous frame takes part (:func:`_segment`) that frame's too; none for a row that takes part in no
    replay check (a sign-in frame not turned, a held pose of an enrollment), which no look-up needs to
    read."""
    bands = hash_bands(row["hash"]) if _counts(row) or _segment(row) else []
    if _segment(row):
        bands = list(dict.fromkeys(bands + hash_bands(row["prev"])))
    return bands


def _segment(row: dict) -> bool:
    """A stored sign-in frame's motion from the frame filmed before it takes part in replay checks: both
    frames turned (a segment reaching into a held pose would match a person who sits still in the same
    place), which :func:`remember_frame_hash` records as ``prev``."""
    return bool(row.get("turned")) and bool(row.get("prev"))


def previous_turned_hash(frames: list, t_ms, ref: dict | None) -> str | None:
    """The face hash of the capture's face frame filmed last before ``t_ms`` (``frames`` as stored), if
    that frame is turned from ``ref`` (:func:`turned_pose`); else None."""
    if t_ms is None:
        return None
    before = [f for f in frames if f.get("fh") and f.get("t_ms") is not None and float(f["t_ms"]) < float(t_ms)]
    if not before:
        return None
    last = max(before, key=lambda f: float(f["t_ms"]))
    return last["fh"] if turned_pose(ref, last) else None


def remember_frame_hash(db, user_id: str, capture_id: str, fh: str | None, turned: bool, now,
                        prev: str | None = None) -> None:
    """Store one analysed sign-in frame's face hash as soon as it arrives, as a *failed* capture's: it
    stays one unless the capture is accepted (:func:`accept_face_hashes`), so however a capture ends, the
    recording it showed cannot be tried again. ``turned``: :func:`turned_pose`, fixed now. ``prev``
    (:func:`previous_turned_hash`): the hash of the turned frame filmed just before; the motion between
    the two takes part in replay checks when this frame is turned too (both ends indexed)."""
    if not fh:
        return
    row = {"user_id": user_id, "capture_id": capture_id, "hash": fh, "turned": bool(turned),
           "failed": True, "created": now, "expires": now + timedelta(days=REPLAY_TTL_DAYS)}
    if prev and turned:
        row["prev"] = prev
    db.liveness_face_hashes.insert_one({**row, "bands": row_bands(row)})


def forget_if_erased(db, user_id: str, capture_id: str) -> bool:
    """After a capture's face hashes or frame fingerprints were stored: if the capture itself is gone, a deletion
    of the account or of its face data erased it meanwhile (its request was checked when it arrived, and the face
    engine worked for a while since), and may have passed those rows already: the capture's are deleted again,
    and True is returned. Every such deletion erases the captures before the face hashes and fingerprints, so
    either it erases the rows just stored or this read sees the capture gone."""
    if db.capture_sessions.count_documents({"_id": capture_id}, limit=1):
        return False
    db.liveness_face_hashes.delete_many({"user_id": user_id, "capture_id": capture_id})
    db.liveness_frames.delete_many({"user_id": user_id, "capture_id": capture_id})
    return True


def accept_face_hashes(db, user_id: str, capture_id: str) -> None:
    """An accepted capture's stored face hashes join the accepted kind, of which the user's newest
    FACE_HASHES_KEPT stay. (Any other capture's stay failed ones until their lifetime ends: never evicted
    by newer ones.) An accepted row has no ``failed`` at all: asked for as such (equality, the fields of the
    user-kind index), never as "not failed", which the embedded database answers by scanning every row."""
    coll = db.liveness_face_hashes
    coll.update_many({"user_id": user_id, "capture_id": capture_id}, {"$unset": {"failed": ""}})
    old = list(coll.find({"user_id": user_id, "failed": None}, {"_id": 1})
               .sort("created", -1).skip(FACE_HASHES_KEPT))
    if old:
        coll.delete_many({"_id": {"$in": [d["_id"] for d in old]}})


def remember_face_hashes(db, user_id: str, doc: dict, now, *, failed: bool = False) -> int:
    """Store the face hashes of a whole closed capture's frames at once (enrollment; tests), each with
    ``near``: how many other frames of the capture are within FACE_HASH_MAX_BITS of it (a held pose has
    many, see :data:`idp.liveness.fingerprint.HELD_POSE_NEIGHBOURS`); accepted unless ``failed``.
    Returns how many were stored."""
    hashes = list(dict.fromkeys(f["fh"] for f in doc.get("frames", []) if f.get("fh") and not f.get("dup")))
    if not hashes:
        return 0
    near = neighbour_counts(hashes, FACE_HASH_MAX_BITS)
    rows = [{"user_id": user_id, "capture_id": doc["_id"], "hash": h, "near": n, "failed": True, "created": now,
             "expires": now + timedelta(days=REPLAY_TTL_DAYS)} for h, n in list(zip(hashes, near))[-FACE_HASHES_KEPT:]]
    db.liveness_face_hashes.insert_many([{**row, "bands": row_bands(row)} for row in rows])
    if not failed:
        accept_face_hashes(db, user_id, doc["_id"])
    return len(hashes)


def encode_dense(points: np.ndarray, box) -> dict:
    """The stored form of a frame's (468, 3) dense landmarks (read back by :func:`observations`)."""
    c = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2, 0.0])
    q = np.clip(np.round((np.asarray(points, np.float64) - c) * DENSE_SCALE), -32767, 32767).astype("<i2")
    return {"dense": base64.b64encode(q.tobytes()).decode("ascii"), "dense_c": [float(c[0]), float(c[1])]}


def _dense_of(frame: dict) -> np.ndarray | None:
    enc, c = frame.get("dense"), frame.get("dense_c")
    try:
        raw = base64.b64decode(enc, validate=True) if isinstance(enc, str) else b""
    except ValueError:
        return None
    if not c or len(raw) != 468 * 3 * 2:
        return None
    return np.frombuffer(bytes(raw), "<i2").reshape(468, 3).astype(np.float32) / DENSE_SCALE + \
        np.array([c[0], c[1], 0.0], np.float32)


def thumb_of(rgb: np.ndarray) -> np.ndarray:
    return thumbnail(rgb)


def thumb_diff(ref: bytes, thumb: np.ndarray) -> float:
    a = np.frombuffer(ref, np.uint8).astype(np.float32).reshape(thumb.shape)
    return round(float(np.abs(thumb.astype(np.float32) - a).mean()), 4)


# --- the burst ------------------------------------------------------------------------------------

def observations(doc: dict) -> list[FrameObservation]:
    """The capture's frames as :class:`FrameObservation` (in-session duplicates left out)."""
    out = []
    for f in doc.get("frames", []):
        if f.get("dup") or f.get("t_ms") is None:
            continue
        box, lm = f.get("box"), f.get("landmarks")
        ok = bool(box) and bool(lm)
        out.append(FrameObservation(
            t_ms=float(f["t_ms"]), box=tuple(float(v) for v in box) if ok else None,
            landmarks={k: (float(v[0]), float(v[1])) for k, v in lm.items()} if ok else None,
            frame_w=int(f.get("w") or 0), frame_h=int(f.get("h") or 0), dense=_dense_of(f) if ok else None,
            passive=float(f["ps"]) if ok and f.get("ps") is not None else None))
    return out


def capture_state(doc: dict, t_ms: float | None = None, challenge: str | None = None) -> CaptureState:
    """The capture-session document as :class:`idp.liveness.CaptureState` (``t_ms``: the latest frame's
    time in the burst; default the last stored frame's; ``challenge``: judge these moves instead of the
    capture's, e.g. the ones shown so far)."""
    obs = observations(doc)
    diff = doc.get("lv_thumb_diff")
    if t_ms is None:
        t_ms = max((o.t_ms for o in obs), default=0.0)
    return CaptureState(
        observations=obs, challenge=challenge or doc.get("challenge"), cue_ms=cue_of(doc),
        thumb_diff=float(diff) if diff is not None else None, frames=int(doc.get("count") or 0),
        good=int(doc.get("good") or 0), needed=int(doc.get("needed") or 0), duplicates=int(doc.get("lv_dups") or 0),
        near_copies=int(doc.get("lv_near") or 0), elapsed_ms=float(t_ms), window_ms=filming_window_ms(doc),
        max_frames=frame_budget(doc))


def decide(doc: dict, t_ms: float | None = None, s: LivenessSettings | None = None,
           challenge: str | None = None) -> CaptureDecision:
    """:func:`idp.liveness.decide_capture` on the capture-session document: the one liveness decision,
    after each frame (:func:`progress`) and at /finish (:func:`evaluate`); ``challenge``: see
    :func:`capture_state`."""
    return decide_capture(capture_state(doc, t_ms, challenge), _lengthened(s or settings(doc), doc))


def filming_window_ms(doc: dict) -> float:
    """How long the page films this capture: its challenge's window, longer by :func:`reveal_delay`."""
    return float(window_ms(doc.get("challenge"))) + reveal_delay(doc)


def evaluate(doc: dict, s: LivenessSettings | None = None) -> CaptureDecision:
    """The capture's liveness outcome at /finish (:func:`decide` on all its frames). Once every move was
    shown, against the whole challenge; before, against the moves shown only (what came after them was not
    asked, and judging it would say at the finish whether a hidden move was guessed right): the shown
    moves performed is then ``challenge_not_performed`` (the rest never came), a counted failure with
    enough good frames like any other."""
    if all_shown(doc):
        return decide(doc, None, s)
    s = s or settings(doc)
    d = decide(doc, None, s, challenge=shown_challenge(doc)) if revealed(doc) else decide(doc, None, s)
    d = dataclasses.replace(d, challenge=shown_challenge(doc))
    if not d.passed:
        return d
    enough = int(doc.get("good") or 0) >= int(doc.get("needed") or 0)
    return dataclasses.replace(d, result=LivenessResult(False, ["challenge_not_performed"], d.result.scores),
                               accepted=False, failed=enough)


def _partial(doc: dict, t_ms: float, s: LivenessSettings) -> CaptureDecision | None:
    """While only some moves are shown: the decision on those alone (None otherwise)."""
    if not revealed(doc) or all_shown(doc):
        return None
    return decide(doc, t_ms, s, challenge=shown_challenge(doc))


#: The next-move gate and the finish judge the face frames of each move (see :func:`move_spans`), and at least
#: of this last stretch up to the frame that completed it: at 150 ms a frame, about six of them.
GATE_SPAN_MS = 1000.0


def move_spans(doc: dict, d: CaptureDecision | None) -> list[tuple[float, float]] | None:
    """``[(from, until), ...]``, times in the burst, one per move that decision ``d`` saw completed, in order:
    the frames whose faces performed it - every frame its evidence was read from (``move<k>_from_ms`` to
    ``move<k>_until_ms`` of :func:`idp.liveness.core.check_turns`: from the facing frame it left to the one
    it came back to, or the last one so far, with the median filter's neighbours), and at least the
    :data:`GATE_SPAN_MS` up to the frame that completed it; None unless ``d`` passed with every one of them
    (fail closed). A frame of a move left out would let anyone's face lend its angle to a picture of the
    owner (the frame in between of a transit, or the peak that scales it), and a move left out (the middle
    one of three) would let anyone perform it."""
    sc = d.result.scores if d is not None and d.passed else {}
    n = len(challenge_moves(d.challenge)) if sc and d.challenge else 0
    keys = [(f"move{k}_time_ms", f"move{k}_from_ms", f"move{k}_until_ms") for k in range(1, n + 1)]
    if not keys or not all(key in sc for trio in keys for key in trio):
        return None
    obs = observations(doc)  # (the decision's times count from the first frame it reads)
    t0 = obs[0].t_ms if obs else 0.0
    spans = []
    for due_key, from_key, until_key in keys:
        due = float(sc[due_key]) + t0
        spans.append((min(float(sc[from_key]) + t0, due - GATE_SPAN_MS), max(float(sc[until_key]) + t0, due)))
    return spans


def next_move_spans(doc: dict, t_ms: float, s: LivenessSettings | None = None) -> list[tuple[float, float]] | None:
    """At sign-in, once the moves shown so far were performed and more are hidden: the :func:`move_spans` of
    the shown moves (the capture API shows the rest once the faces that performed them match the enrolled
    one); None otherwise."""
    return move_spans(doc, _partial(doc, t_ms, s or settings(doc)))


def progress(doc: dict, t_ms: float, s: LivenessSettings | None = None) -> dict:
    """What the frame response says about the burst so far (:func:`decide` after this frame): elapsed
    time, window, the challenge's progress (moves done of moves needed), a live hint (code and text, see
    idp.liveness.live_hint), whether the checks already pass and ``done`` (the page stops filming).
    The challenge, its moves, instruction, cue and hints only for the moves shown (:func:`shown_count`):
    nothing before any, and while some are hidden, the decision on the shown ones alone (so no answer
    depends on a hidden move)."""
    s = s or settings(doc)
    shown = revealed(doc)
    window = filming_window_ms(doc)
    partial = _partial(doc, t_ms, s)
    d = partial or decide(doc, t_ms, s)
    sc = d.result.scores
    # before the moves were shown every turn is too early, whichever way it went: the answer must not
    # say which way was right (the decision's own count of matching moves would)
    done_moves = int(sc.get("moves_done", 0)) if shown else 0
    challenge = shown_challenge(doc)
    if not shown:
        hint = None
    elif partial is not None and partial.passed:
        hint = "back"  # the shown moves are done: back to the camera while the next one is prepared
    else:
        hint = live_hint(d.result, challenge or d.challenge, s)
    if partial is not None:  # not passed, not done before every move was shown and judged
        passed, done = False, partial.final or t_ms >= window or int(doc.get("count") or 0) >= frame_budget(doc)
    else:
        passed, done = d.passed, d.done
    return {"challenge": challenge, "moves": challenge.split("+") if challenge else [],
            "instruction": shown_instruction(doc), "cue_ms": float(doc["lv_cue_t"]) if shown else None,
            "elapsed_ms": int(max(0.0, t_ms)), "window_ms": int(window), "max_frames": frame_budget(doc),
            "passed": passed, "window_over": t_ms >= window, "moves_done": done_moves,
            "moves_needed": len(moves_of(doc)),
            "hint": hint, "hint_message": hint_message(hint, challenge, done_moves) if shown else None,
            "before_cue": t_ms < cue_of(doc),
            # the outcome cannot change any more: the page stops and the failure is reported at once
            "final": d.final, "done": done}
