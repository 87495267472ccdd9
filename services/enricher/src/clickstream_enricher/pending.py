"""Clicks whose user is not known yet, held for a grace period in a bounded buffer.

Users and clicks travel on different topics, so a new user's first clicks can overtake the user
record. Holding them briefly turns that race into a join instead of a loss; the bound keeps a
flood of unknown ids from exhausting memory (they overflow to `click.unmatched`, counted).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from clickstream_common.contracts import Click
from clickstream_common.records import PartitionKey, Record


@dataclass(frozen=True, slots=True)
class PendingClick:
    record: Record
    click: Click
    deadline: float

    @property
    def partition(self) -> PartitionKey:
        return (self.record.topic, self.record.partition)


class PendingClicks:
    def __init__(self, grace_seconds: float, capacity: int) -> None:
        self.grace_seconds = grace_seconds
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, int, int], PendingClick] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, record: Record, click: Click, now: float) -> list[PendingClick]:
        """Hold a click; returns the oldest ones pushed out when the buffer is full."""
        key = (record.topic, record.partition, record.offset)
        self._items[key] = PendingClick(record, click, now + self.grace_seconds)
        overflow: list[PendingClick] = []
        while len(self._items) > self.capacity:
            overflow.append(self._items.popitem(last=False)[1])
        return overflow

    def all(self) -> list[PendingClick]:
        return list(self._items.values())

    def remove(self, item: PendingClick) -> bool:
        """False if it was not held (any more)."""
        key = (item.record.topic, item.record.partition, item.record.offset)
        return self._items.pop(key, None) is not None

    def expired(self, now: float) -> list[PendingClick]:
        """Items past their deadline, removed; insertion order is deadline order."""
        gone: list[PendingClick] = []
        while self._items:
            key, item = next(iter(self._items.items()))
            if item.deadline > now:
                break
            del self._items[key]
            gone.append(item)
        return gone

    def forget(self, partitions: Iterable[PartitionKey]) -> None:
        revoked = set(partitions)
        for key in [k for k, v in self._items.items() if v.partition in revoked]:
            del self._items[key]
