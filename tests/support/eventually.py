"""Waiting for a condition in tests: one helper instead of a hand-written deadline loop each time.

A timeout here means "give up waiting", never a timing assertion: keep it generous, so a slow or
busy machine only makes a test slower, not red.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GaveUpWaiting(AssertionError):
    """The condition never held in time: a test failure, which a caller that prefers to report
    what it got (e.g. the messages that did arrive) can tell from other failures."""


def eventually(
    check: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.2,
    message: str | Callable[[], str] = "the condition never held",
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` until it returns something truthy, and return that.

    An exception of a type in `retry_on` counts as "not yet" (e.g. a service not serving yet);
    any other exception, AssertionError included, fails at once: `check` may assert on things
    that must hold all along (a process still alive). On timeout, AssertionError carries
    `message` (a callable is called then, to describe the state at that moment) and the last
    value or exception seen. `interval` is only the pause between calls: a check that blocks
    while it waits (a consumer poll) may take 0.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except retry_on as exc:
            last: object = exc
            cause: BaseException | None = exc
        else:
            if value:
                return value
            last, cause = value, None
        if time.monotonic() >= deadline:
            raise GaveUpWaiting(_explain(message, timeout, last)) from cause
        time.sleep(interval)


def _explain(message: str | Callable[[], str], timeout: float, last: object) -> str:
    text = message() if callable(message) else message
    return f"{text} (after {timeout:g}s; last: {last!r})"
