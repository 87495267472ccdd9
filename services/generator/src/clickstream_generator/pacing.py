"""Rate limiting in batches against a monotonic clock.

Sleeping once per click drifts and burns a syscall per record; granting whatever is due since the
start keeps the long-run rate exact while the caller sends and sleeps in small batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TICK_SECONDS = 0.05
MAX_BATCH = 5000
MAX_LAG_SECONDS = 1.0
# Float rounding must not leave a click undue just after `wait_seconds` said it was due.
_EPSILON = 1e-6


class Pacer:
    """Grants sends so that after t seconds about `rate * t` were granted; rate 0 is unlimited."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._start = clock()
        self._granted = 0

    @property
    def batch_size(self) -> int:
        """About one tick's worth, so a sleep covers several clicks even at low rates."""
        if self._rate <= 0:
            return MAX_BATCH
        return max(1, min(MAX_BATCH, round(self._rate * TICK_SECONDS)))

    def grant(self, limit: int) -> int:
        """How many of `limit` may be sent now."""
        if self._rate <= 0:
            self._granted += limit
            return limit
        now = self._clock()
        due = int((now - self._start) * self._rate + _EPSILON) + 1
        if due - self._granted > self._rate * MAX_LAG_SECONDS:
            # After a stall (a slow flush, a paused container) resume the rate, don't burst.
            self._start = now - self._granted / self._rate
            due = self._granted + 1
        granted = max(0, min(limit, due - self._granted))
        self._granted += granted
        return granted

    def wait_seconds(self, count: int) -> float:
        """Time until `count` more sends are due."""
        if self._rate <= 0:
            return 0.0
        due_at = self._start + (self._granted + count - 1) / self._rate
        return max(0.0, due_at - self._clock())
