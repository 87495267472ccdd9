"""Event-time progress: how far the input is complete, so windows can close.

Per partition, the highest event time seen minus the allowed lateness, advanced by the wall time
since that highest time was seen: a partition that goes quiet keeps moving, so a VIP who leaves
is closed one gap after their last click even if nobody else clicks (windows that close only
when new data arrives are the most reported failure of ksqlDB, Kafka Streams and Quix sessions).
The operator's watermark is the minimum over its partitions, not counting those idle for the
idle timeout (Flink's `table.exec.source.idle-timeout`); when all are idle, the furthest one.
It goes back only when a partition far behind is assigned (taken over from a slower replica):
the operator then keeps, per partition, how far it has closed windows (see `WindowOperator`),
so a window closed stays closed, and the partitions it keeps are not declared late in bulk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class _Partition:
    max_event_ms: int | None
    raised_at: float  # wall clock when max_event_ms was last raised (or the partition assigned)
    last_record_at: float  # wall clock of the last record (or of the assignment)


class Watermarks:
    def __init__(
        self,
        lateness_ms: int,
        idle_timeout_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lateness = lateness_ms
        self._idle_s = idle_timeout_ms / 1000
        self._clock = clock
        self._partitions: dict[int, _Partition] = {}
        self._current: int | None = None

    def assign(self, partition: int, max_event_ms: int | None = None) -> None:
        """Take a partition on, from the highest event time its changelog remembers."""
        now = self._clock()
        self._partitions[partition] = _Partition(max_event_ms, now, now)

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)

    def observe(self, partition: int, event_ms: int) -> None:
        now = self._clock()
        state = self._partitions[partition]
        state.last_record_at = now
        if state.max_event_ms is None or event_ms > state.max_event_ms:
            state.max_event_ms = event_ms
            state.raised_at = now

    def max_event_ms(self, partition: int) -> int | None:
        return self._partitions[partition].max_event_ms

    @property
    def current(self) -> int | None:
        """The operator's watermark as of the last `advance` (None until any event time)."""
        return self._current

    def advance(self) -> int | None:
        """Recompute the operator's watermark from the partitions and the wall clock."""
        now = self._clock()
        active: list[int] = []
        idle: list[int] = []
        for state in self._partitions.values():
            if state.max_event_ms is None:
                mark = None
            else:
                elapsed_ms = int((now - state.raised_at) * 1000)
                mark = state.max_event_ms + elapsed_ms - self._lateness
            if now - state.last_record_at >= self._idle_s:
                if mark is not None:
                    idle.append(mark)
            elif mark is None:
                self._current = None  # an active partition with no event time yet holds it
                return None
            else:
                active.append(mark)
        if active:
            self._current = min(active)
        elif idle:
            self._current = max(idle)
        else:
            self._current = None
        return self._current
