"""Start-up waits: a broker that is not up yet is waited for, not a reason to exit.

On Kubernetes the brokers and the services start together. A service that exited because Kafka or
RabbitMQ was not answering yet would be restarted with a growing back-off, and `skaffold run`
fails a whole deploy on the first container exit. So each service waits, with one log line saying
for what, and stays not ready (its `ready` is false until it holds what it waited for). A broker
that answers and refuses (bad credentials, a clashing topology) is not waited for: that is a
setting to fix, and the service stops at start naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from clickstream_common.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")


class Stopping(Protocol):
    """The service's shutdown: `wait` returns early, with True, once it was requested."""

    @property
    def requested(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StoppedWhileWaiting(Exception):
    """Shutdown was requested before the broker answered: a clean stop, nothing to report."""


def _pause(stopping: Stopping, seconds: float) -> None:
    stopping.wait(seconds)


def wait_for(
    what: str,
    attempt: Callable[[], T],
    *,
    unavailable: type[BaseException] | tuple[type[BaseException], ...],
    refused: type[BaseException] | tuple[type[BaseException], ...] = (),
    stopping: Stopping,
    max_pause: float = 5.0,
) -> T:
    """`attempt()`'s result, retried with backoff while it raises `unavailable` (but not
    `refused`), until it succeeds or `stopping` is requested."""
    started = time.monotonic()
    waited = False

    def retriable(exc: BaseException) -> bool:
        return isinstance(exc, unavailable) and not isinstance(exc, refused)

    def waiting(state: RetryCallState) -> None:
        nonlocal waited
        if not waited:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning(f"waiting for {what}", error=str(error))
        waited = True

    last: BaseException | None = None

    def once() -> T:
        nonlocal last
        if last is not None and stopping.requested:  # no new attempt (up to its timeout)
            raise last
        try:
            return attempt()
        except BaseException as exc:
            last = exc
            raise

    retrying = Retrying(
        retry=retry_if_exception(retriable),
        wait=wait_exponential(multiplier=0.5, max=max_pause),
        stop=lambda _: stopping.requested,
        sleep=lambda seconds: _pause(stopping, seconds),
        before_sleep=waiting,
        reraise=True,
    )
    try:
        result: T = retrying(once)
    except BaseException as exc:
        if stopping.requested and retriable(exc):
            raise StoppedWhileWaiting(f"stopped while waiting for {what}: {exc}") from None
        raise
    if waited:
        log.info(f"{what} answers", waited_seconds=round(time.monotonic() - started, 1))
    return result
