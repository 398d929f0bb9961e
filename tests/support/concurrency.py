"""Requests sent at once: the tests of races (double clicks, parallel posts) use this one helper."""
from __future__ import annotations

import threading
from typing import Callable


def at_once(calls: list[Callable[[], object]]) -> list:
    """Run ``calls`` in threads released together (a barrier); their results in the order of ``calls``. An
    exception in a call is raised here, after every thread has ended."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
