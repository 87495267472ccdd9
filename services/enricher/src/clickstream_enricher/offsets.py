"""Which click offsets may be committed.

A partition's offsets are committable up to its oldest click still waiting for its user: a
restart then re-reads that click instead of losing it (docs/ARCHITECTURE.md § Semantics 4, 6).

At least once, that is all: the clicks after a held one that were already finished are finished
again after a restart, and their outputs repeat (same event_ids). Exactly once, the position also
carries a note, stored as the commit's offset metadata in the same transaction as the outputs:
how far the partition was read (`end`) and which offsets in between are still held. The next
owner `restore`s it and `admit` skips every record the note says is finished, so their outputs
are not written twice, while the held ones are processed again.

Note format: ``v1:<end - offset>:<gaps>``, the gaps between consecutive held offsets after the
committed one (which is always held), e.g. offset 100, held {100, 103, 150}, end 160:
``v1:60:3,47``. Kafka bounds offset metadata (`offset.metadata.max.bytes`, 4096 by default);
past `note_limit` the note stops at a held offset and claims nothing beyond it, so only those
later clicks may repeat after a crash (counted in `notes_truncated`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from clickstream_common.records import PartitionKey, Position

NOTE_LIMIT = 4000
_VERSION = "v1:"


@dataclass(slots=True)
class _Replay:
    """A restored note: offsets in [start, end) not held were finished by the last owner.

    `unread` holds the note's held offsets not read again yet, in order.
    """

    start: int
    end: int
    unread: deque[int]


class OffsetTracker:
    def __init__(self, *, notes: bool = False, note_limit: int = NOTE_LIMIT) -> None:
        self._notes = notes
        self._note_limit = note_limit
        self._next: dict[PartitionKey, int] = {}
        self._held: dict[PartitionKey, set[int]] = {}
        self._committed: dict[PartitionKey, Position] = {}
        self._replay: dict[PartitionKey, _Replay] = {}
        self.notes_truncated = 0

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

    def restore(self, partition: PartitionKey, position: Position) -> bool:
        """Take over a partition from its committed position; True if it carried a usable note.

        The note's held offsets stay held (uncommittable) until they are read and processed again.
        """
        self.forget([partition])
        self._committed[partition] = position
        parsed = parse_note(position.offset, position.note)
        if parsed is None:
            return False
        end, held = parsed
        self._next[partition] = end
        self._held[partition] = set(held)
        self._replay[partition] = _Replay(position.offset, end, deque(sorted(held)))
        return True

    def admit(self, partition: PartitionKey, offset: int) -> bool:
        """Whether a record read must be processed: False if the restored note says it is done."""
        replay = self._replay.get(partition)
        if replay is None:
            return True
        unread = replay.unread
        while unread and unread[0] < offset:
            # Never delivered (removed by retention, say): there is nothing left to wait for.
            self.release(partition, unread.popleft())
        if unread and unread[0] == offset:
            # Held when the note was written: it is processed now, and held again if need be.
            self.release(partition, unread.popleft())
            return True
        if offset >= replay.end:
            del self._replay[partition]
            return True
        return offset < replay.start

    def positions(self) -> dict[PartitionKey, Position]:
        """Positions (offset, and the note when exactly once) changed since `mark_committed`."""
        result: dict[PartitionKey, Position] = {}
        for partition, next_offset in self._next.items():
            position, truncated = self._position(partition, next_offset)
            if self._committed.get(partition) != position:
                result[partition] = position
                self.notes_truncated += truncated
        return result

    def committable(self) -> dict[PartitionKey, int]:
        """Offsets whose position changed since the last `mark_committed`."""
        return {partition: position.offset for partition, position in self.positions().items()}

    def mark_committed(self, positions: Mapping[PartitionKey, int | Position]) -> None:
        for partition, position in positions.items():
            self._committed[partition] = (
                position if isinstance(position, Position) else Position(position)
            )

    def forget(self, partitions: list[PartitionKey]) -> None:
        """A revoked partition's state belongs to its next owner, who starts from the commit."""
        for partition in partitions:
            self._next.pop(partition, None)
            self._held.pop(partition, None)
            self._committed.pop(partition, None)
            self._replay.pop(partition, None)

    def _position(self, partition: PartitionKey, next_offset: int) -> tuple[Position, bool]:
        held = self._held.get(partition)
        if not held:
            return Position(next_offset), False
        offset = min(held)
        if not self._notes:
            return Position(offset), False
        note, truncated = make_note(offset, next_offset, sorted(held), self._note_limit)
        return Position(offset, note), truncated


def make_note(offset: int, end: int, held: list[int], limit: int = NOTE_LIMIT) -> tuple[str, bool]:
    """The note for a commit at `offset` (the smallest of the sorted `held`), read up to `end`.

    Returns the note and whether it had to stop short of `end` to fit in `limit` characters.
    """
    head = f"{_VERSION}{end - offset}:"
    budget = limit - len(head)
    gaps: list[str] = []
    size = -1
    previous = offset
    for held_offset in held[1:]:
        gap = str(held_offset - previous)
        size += len(gap) + 1
        if size > budget:
            # Claim nothing from this held offset on: it and all after it are read again.
            return f"{_VERSION}{held_offset - offset}:{','.join(gaps)}", True
        gaps.append(gap)
        previous = held_offset
    return head + ",".join(gaps), False


def parse_note(offset: int, note: str) -> tuple[int, frozenset[int]] | None:
    """(end, held offsets) from a note written by `make_note`, or None if there is none usable."""
    if not note.startswith(_VERSION) or offset < 0:
        return None
    try:
        span_text, gaps_text = note[len(_VERSION) :].split(":")
        span = int(span_text)
        held = [offset]
        for gap_text in filter(None, gaps_text.split(",")):
            gap = int(gap_text)
            if gap <= 0:
                return None
            held.append(held[-1] + gap)
    except ValueError:
        return None
    if span <= held[-1] - offset:
        return None
    return offset + span, frozenset(held)
