"""Which click offsets may be committed.

A partition's offsets are committable up to its oldest click still waiting for its user: a
restart then re-reads that click instead of losing it (DESIGN § Semantics 4 and 6).
"""

from __future__ import annotations

from clickstream_common.records import PartitionKey


class OffsetTracker:
    def __init__(self) -> None:
        self._next: dict[PartitionKey, int] = {}
        self._held: dict[PartitionKey, set[int]] = {}
        self._committed: dict[PartitionKey, int] = {}

    def done(self, partition: PartitionKey, offset: int) -> None:
        """Mark a record finished (its outputs acknowledged); records arrive in offset order."""
        if offset >= self._next.get(partition, 0):
            self._next[partition] = offset + 1

    def hold(self, partition: PartitionKey, offset: int) -> None:
        """A record is seen but not finished: nothing at or past it may be committed."""
        self._held.setdefault(partition, set()).add(offset)
        self.done(partition, offset)

    def release(self, partition: PartitionKey, offset: int) -> None:
        held = self._held.get(partition)
        if held is not None:
            held.discard(offset)

    def committable(self) -> dict[PartitionKey, int]:
        """Offsets that moved since the last `mark_committed`."""
        result: dict[PartitionKey, int] = {}
        for partition, next_offset in self._next.items():
            held = self._held.get(partition)
            offset = min(held) if held else next_offset
            if self._committed.get(partition) != offset:
                result[partition] = offset
        return result

    def mark_committed(self, offsets: dict[PartitionKey, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: list[PartitionKey]) -> None:
        """A revoked partition's state belongs to its next owner, who starts from the commit."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._held.pop(partition, None)
            self._committed.pop(partition, None)
