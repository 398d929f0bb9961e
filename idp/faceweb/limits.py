"""Limits on face work, so that one account or one address cannot stall the provider (no Flask here).

- Rates (in the database, shared by every worker and instance): capture sessions started and frames
  sent, per user and per client address, in fixed windows (``IDP_FACE_RATE_WINDOW``); an address's budget
  is shared fairly among its accounts (:class:`FaceRates`). Over a limit the request is answered 429 with
  ``Retry-After`` before any work is done.
- Slots (per worker process, the only in-process state): at most ``IDP_FACE_CONCURRENCY`` frames are
  decoded and analysed at once, and at most as many more wait (up to ``IDP_FACE_BUSY_WAIT`` ms) for a
  slot, no account or client network holding more than half of these places; at most as many more, held
  back only by their network's share (other people behind the same address), wait for it outside them;
  anything beyond is answered 429 ``face_busy`` at once. A worker's threads therefore never all sit in face
  work, and other pages (sign-in, tokens) keep being served.
- The face work itself runs on the slots' own threads at a lower CPU priority (nice ``FACE_NICE``), and
  the engine is warmed up there, so the TensorFlow thread pools it creates inherit that priority: when
  the CPUs are saturated with face work, page requests still get the CPU first.
"""
from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from idp.throttle import RateLimit, SharedRateLimit, wait_text

from .capture_sessions import CaptureError

BUSY_RETRY_S = 1
FACE_NICE = 10  # Linux nice of the face-work threads (0 = the request threads' priority)

log = logging.getLogger("idp.faceweb")
BUSY_MESSAGE = "The server is busy with other face checks. Please try again in a moment."


def _lower_priority() -> None:
    try:  # on Linux the nice value is per thread (and inherited by the threads this one creates)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FACE_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority, still bounded
        log.debug("face work runs at normal priority")


class FaceSlots:
    """Bounded face work of one worker process: ``concurrency`` at work, as many waiting ``wait_s``.

    No one holds more than half of them: the frames of one owner (an account, a client network: the
    ``owners`` of :meth:`run`) admitted at once are at most ``concurrency``, so one account or network
    sending frames in parallel (several sessions) cannot refuse everyone else ``face_busy`` at once: another
    owner's frame always finds a place, and waits ``wait_s`` at most for the frame at work (longer frames,
    on a loaded machine, still make it busy). Two owners (two accounts on two networks) fill a worker of
    concurrency 1. The page sends a capture's frames one at a time, so a person never meets their account's
    share; people behind one address (an office or carrier NAT) do meet their network's: a frame held back
    only by the share of one of its ``patient`` owners (:meth:`run`: the network) waits for it, up to
    ``wait_s``, outside the worker's places - at most ``concurrency`` such frames per worker, so they never
    take another network's place, and a network that fills those too is refused at once, as before. The
    counts live in this process only (admission of this worker's own threads, nothing to share between
    instances)."""

    def __init__(self, concurrency: int, wait_s: float):
        self.concurrency = max(1, int(concurrency))
        self.wait_s = max(0.0, float(wait_s))
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="face-work",
                                        initializer=_lower_priority)
        self._lock = threading.Condition()
        self._admitted = 0  # at work + waiting
        self._held: dict[str, int] = {}  # admitted frames per owner
        self._outside = 0  # frames waiting for a patient owner's share (see run), outside the places

    @classmethod
    def from_config(cls, config) -> "FaceSlots":
        return cls(config.face_concurrency, config.face_busy_wait_ms / 1000.0)

    def warm_up(self, fn) -> None:
        """Run ``fn`` (loading and warming up the engine) on a face-work thread, without limits."""
        self._pool.submit(fn).result()

    def run(self, fn, owners: tuple[str, ...] = (), patient: tuple[str, ...] = (), admitted=None):
        """``fn()`` on a face-work thread; its result or exception. Raises CaptureError 429 ``face_busy``
        when as many requests as there are slots already wait, when one of ``owners`` (keys such as
        ``user:<id>``, ``net:<address>``) already holds its share, or when no slot frees within ``wait_s``.
        Held back only by the share of owners in ``patient`` (the client network: other people behind the
        same address), the frame first waits for it, at most ``wait_s``, unless ``concurrency`` frames of this
        worker already wait so. ``admitted()`` is called once the frame has its place (after that wait)."""
        owners = tuple(dict.fromkeys(owners))
        with self._lock:
            self._wait_for_patient_owners(owners, patient)
            if self._admitted >= 2 * self.concurrency or any(
                    self._held.get(o, 0) >= self.concurrency for o in owners):
                raise self._busy()
            queued = self._admitted >= self.concurrency  # every slot at work: this one waits for one
            self._admitted += 1
            for o in owners:
                self._held[o] = self._held.get(o, 0) + 1
        try:
            if admitted is not None:
                admitted()
            started = threading.Event()

            def task():
                started.set()
                return fn()
            future = self._pool.submit(task)
            # only a request that found every slot taken may time out: with a slot free, the work starts as
            # soon as its thread is scheduled, which on a saturated CPU (the threads run at a lower
            # priority) can itself take longer than wait_s; that is not a busy server
            if queued and not started.wait(self.wait_s) and future.cancel():
                raise self._busy()
            return future.result()
        finally:
            with self._lock:
                self._admitted -= 1
                for o in owners:
                    if self._held[o] <= 1:
                        del self._held[o]
                    else:
                        self._held[o] -= 1
                self._lock.notify_all()

    def _wait_for_patient_owners(self, owners: tuple[str, ...], patient: tuple[str, ...]) -> None:
        """(Holding the lock.) Return once no owner in ``patient`` holds its share, or at once when another
        owner does (the admission then refuses); raises ``face_busy`` when the wait is full or over."""
        def waiting_for() -> bool:
            held = [o for o in owners if self._held.get(o, 0) >= self.concurrency]
            return bool(held) and all(o in patient for o in held)
        if not waiting_for():
            return
        if self._outside >= self.concurrency:
            raise self._busy()
        self._outside += 1
        try:
            if not self._lock.wait_for(lambda: not waiting_for(), timeout=self.wait_s):
                raise self._busy()
        finally:
            self._outside -= 1

    @staticmethod
    def _busy() -> CaptureError:
        return CaptureError(429, "face_busy", BUSY_MESSAGE, retry_after=BUSY_RETRY_S)


class FaceRates:
    """Capture sessions and frames per user (:class:`RateLimit`) and per client address
    (:class:`SharedRateLimit`, the address's accounts its members).

    What each limit protects against: the per-user limits, counted across every address, keep one account
    from making unbounded face work by spreading over many addresses; the per-address limits keep one address
    from making unbounded face work by spreading over many accounts (registration is open). The per-address
    budget is shared fairly among the accounts behind the address rather than first come, first served: a
    handful of accounts spending it at the start of a window would otherwise lock the face step, and so the
    sign-in, of everyone behind the same office or carrier NAT for the rest of the window. Once the budget is
    spent each account still gets its share, the budget divided by the accounts seen at the address in the
    window: cutting another account's share down to ``s`` captures takes ``budget / s`` accounts active in
    the same window, while the address's total stays bounded (``SharedRateLimit``). Every count is in the
    database, per window; nothing known only to one process decides."""

    def __init__(self, db, config):
        window = config.face_rate_window_s
        self.user_captures = RateLimit(db, config.face_user_captures, window)
        self.ip_captures = SharedRateLimit(db, config.face_ip_captures, window)
        self.user_frames = RateLimit(db, config.face_user_frames, window)
        self.ip_frames = SharedRateLimit(db, config.face_ip_frames, window)

    def capture_started(self, uid: str, ip: str | None) -> None:
        """Count a new capture session; raises CaptureError 429 over a limit."""
        self._hit(self.user_captures, self.ip_captures, "face_captures", uid, ip,
                  "Too many face captures were started")

    def frame_sent(self, uid: str, ip: str | None) -> None:
        """Count a frame sent to an open capture; raises CaptureError 429 over a limit."""
        self._hit(self.user_frames, self.ip_frames, "face_frames", uid, ip, "Too many face pictures were sent")

    @staticmethod
    def _hit(per_user: RateLimit, per_ip: SharedRateLimit, name: str, uid: str, ip: str | None,
             what: str) -> None:
        wait = per_user.hit(f"{name}:user:{uid}", owner=uid)
        who = "for this account"
        if not wait and ip:
            from idp.web.proxy import limit_address
            wait, who = per_ip.hit(f"{name}:ip:{limit_address(ip)}", uid), "from your network"
        if wait:
            raise CaptureError(429, "face_rate_limited", f"{what} {who}. Please wait {wait_text(wait)} "
                               "and try again.", retry_after=wait)
