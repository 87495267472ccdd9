"""A blocking call bounded from outside, for native calls that may not keep their own timeout.

librdkafka's transactional calls take a timeout, but a coordinator request made while the only
broker restarts can wait forever regardless (confluentinc/librdkafka#5456, open as of 2.14): the
Python call then never returns. The client releases the GIL inside such calls, so another thread
can stop waiting for it; the caller decides what to do with the instance left stuck.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CallOverran(RuntimeError):
    """The call did not return in time. It still runs on an abandoned daemon thread, so the
    object it was made on must not be used again."""

    def __init__(self, name: str, bound: float) -> None:
        super().__init__(f"{name} did not return within {bound:g} s")
        self.name = name


def call_within(call: Callable[[], T], bound: float, name: str) -> T:
    """`call()`'s result or exception, or `CallOverran` once `bound` seconds have passed.

    The call runs on a daemon thread, so one that never returns does not hold up the process's
    exit (a ThreadPoolExecutor worker would: its threads are joined at exit).
    """
    outcome: list[T] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the caller's thread, raised there
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name=f"bounded:{name}", daemon=True).start()
    if not finished.wait(bound):
        raise CallOverran(name, bound)
    if failure:
        raise failure[0]
    return outcome[0]
