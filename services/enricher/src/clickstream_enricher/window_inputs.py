"""What a windowed query aggregates, read from its input records: one stream's rows as they are
(`StreamRows`: the sessions over VipActions), or clicks joined to their user as of each click
(`JoinedClicks`: a query over Clicks JOIN Users).

A joined click whose user is not known yet waits for it (JOIN_GRACE_MS), as in the row-by-row
join, with one rule more: the user's later clicks wait behind it. The window state skips a record
its key has already applied (a replay after a crash), which is right only while each key's
records are applied in offset order; a click that overtook its user's waiting one would make that
one look like a replay when it is released.

Offsets are committable up to the oldest waiting click (`OffsetTracker`). Exactly once, the
commit's note also says which records past it are finished, so their side outputs (unmatched,
DLQ) are not written twice after a restart; at least once, those repeat, and the window state
still counts each click once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from clickstream_common.contracts import (
    BadRecord,
    Click,
    decode_click,
    decode_event,
    key_matches,
)
from clickstream_common.dead_letter import dead_letter
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.lookup import Found
from clickstream_common.records import OutRecord, PartitionKey, Position, Record

from clickstream_enricher.directory import UserDirectory, UserMatch, unmatched_reason
from clickstream_enricher.offsets import OffsetTracker
from clickstream_enricher.pending import PendingClick, PendingClicks
from clickstream_enricher.rows import Row


@dataclass(frozen=True, slots=True)
class InputRow:
    """A row for the windows: the record it came from, its event time, and its two sides."""

    record: Record
    event_ms: int
    row: Row
    user: Row | None


@dataclass(slots=True)
class Taken:
    """What a batch of records became: rows for the windows, and records for side topics."""

    rows: list[InputRow] = field(default_factory=list)
    side: list[OutRecord] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    seen: list[tuple[int, int]] = field(default_factory=list)
    """(partition, event time) of the records read that are not rows now (waiting, or without
    a user): they move the watermark all the same."""


class WindowInput(Protocol):
    @property
    def waiting(self) -> int:
        """Records read but not yet turned into rows (clicks waiting for their user)."""
        ...

    def assign(self, partitions: list[PartitionKey]) -> None: ...
    def revoke(self, partitions: list[PartitionKey]) -> None: ...
    def take(self, records: list[Record]) -> Taken:
        """Turn a batch (possibly empty) into rows, releasing waiting records that are due."""
        ...

    def positions(self) -> dict[PartitionKey, Position]:
        """What may be committed now, for the partitions whose position moved."""
        ...

    def mark_committed(self, positions: Mapping[PartitionKey, Position]) -> None: ...


class StreamRows:
    """One stream's records, each a row keyed by its user_id; nothing ever waits."""

    waiting = 0

    def __init__(self, dead_letter_topic: str, value_format: ValueFormat = JSON) -> None:
        self._dead_letter = dead_letter_topic
        self._format = value_format
        self._offsets = OffsetTracker()

    def assign(self, partitions: list[PartitionKey]) -> None:
        self._offsets.forget(partitions)

    def revoke(self, partitions: list[PartitionKey]) -> None:
        self._offsets.forget(partitions)

    def take(self, records: list[Record]) -> Taken:
        taken = Taken()
        done = self._offsets.done
        for record in records:
            done((record.topic, record.partition), record.offset)
            try:
                row, event_ms = decode_event(record, reader=self._format)
            except BadRecord as exc:
                taken.side.append(dead_letter(record, str(exc), self._dead_letter))
                taken.counts["dead_lettered"] += 1
                continue
            taken.rows.append(InputRow(record, event_ms, row, None))
        return taken

    def positions(self) -> dict[PartitionKey, Position]:
        return self._offsets.positions()

    def mark_committed(self, positions: Mapping[PartitionKey, Position]) -> None:
        self._offsets.mark_committed(positions)


class Resumer(Protocol):
    """The delivery strategy's view of where a partition was left (`BatchCommitter`)."""

    @property
    def exactly_once(self) -> bool: ...
    def resume(self, partitions: list[PartitionKey]) -> dict[PartitionKey, Position]: ...


@dataclass(frozen=True)
class JoinTopics:
    dead_letter: str
    unmatched: str


class JoinedClicks:
    """Clicks, each looked up in user-state (as of its event time, or the latest version), one
    round trip per batch; an inner join sends a click without a user to the unmatched topic."""

    def __init__(
        self,
        *,
        users: UserDirectory,
        resumer: Resumer,
        join: Literal["inner", "left"],
        as_of: bool,
        pending: PendingClicks,
        topics: JoinTopics,
        value_format: ValueFormat = JSON,
        retry_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._format = value_format
        self._resumer = resumer
        self._inner = join == "inner"
        self._as_of = as_of
        self._pending = pending
        self._topics = topics
        self._retry_interval = retry_interval
        self._clock = clock
        self._next_retry = 0.0
        self._offsets = OffsetTracker(notes=resumer.exactly_once)
        # Per user, how many of its clicks wait: its later clicks wait behind them.
        self._waiting_users: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def assign(self, partitions: list[PartitionKey]) -> None:
        """From the committed positions, and (exactly once) the note there of what the last
        owner finished past a waiting click."""
        self._offsets.forget(partitions)
        for partition, position in self._resumer.resume(partitions).items():
            self._offsets.restore(partition, position)

    def revoke(self, partitions: list[PartitionKey]) -> None:
        """The waiting clicks are read again by the next owner, from the commit they pinned."""
        self._pending.forget(partitions)
        self._offsets.forget(partitions)
        self._waiting_users = Counter(item.click.user_id for item in self._pending.all())

    def take(self, records: list[Record]) -> Taken:
        taken = Taken()
        fresh = self._decode(records, taken)
        now = self._clock()
        retries = self._due_retries(now)
        keys = [self._key(click) for _, click in fresh]
        keys += [self._key(item.click) for item in retries]
        matches = self._users.lookup(keys) if keys else []
        self._retry(retries, matches[len(fresh) :], taken)
        for (record, click), match in zip(fresh, matches, strict=False):
            if click.user_id in self._waiting_users or (
                match.found == Found.UNKNOWN and self._pending.grace_seconds > 0
            ):
                self._hold(record, click, now, taken)
            else:
                self._settle(record, click, match, taken)
        for item in self._pending.expired(now):
            self._release(item)
            self._settle(item.record, item.click, UserMatch(Found.UNKNOWN), taken, expired=True)
        return taken

    def positions(self) -> dict[PartitionKey, Position]:
        return self._offsets.positions()

    def mark_committed(self, positions: Mapping[PartitionKey, Position]) -> None:
        self._offsets.mark_committed(positions)

    def _decode(self, records: list[Record], taken: Taken) -> list[tuple[Record, Click]]:
        fresh: list[tuple[Record, Click]] = []
        admit = self._offsets.admit
        done = self._offsets.done
        for record in records:
            partition = (record.topic, record.partition)
            if not admit(partition, record.offset):
                taken.counts["already_done"] += 1
                continue
            done(partition, record.offset)
            try:
                click = decode_click(record, reader=self._format)
                if not key_matches(record, click.user_id):
                    # Its user's other clicks may be on another partition, owned elsewhere.
                    raise BadRecord("key does not match user_id")
            except BadRecord as exc:
                taken.side.append(dead_letter(record, str(exc), self._topics.dead_letter))
                taken.counts["dead_lettered"] += 1
                continue
            fresh.append((record, click))
        return fresh

    def _retry(self, retries: list[PendingClick], matches: list[UserMatch], taken: Taken) -> None:
        """Oldest first; once one of a user's clicks still waits, so do its later ones."""
        still_waiting: set[str] = set()
        for item, match in zip(retries, matches, strict=True):
            user_id = item.click.user_id
            if user_id in still_waiting or match.found == Found.UNKNOWN:
                still_waiting.add(user_id)
                continue
            # Gone already if the bounded buffer pushed it out since the lookup.
            if self._pending.remove(item):
                self._release(item)
                self._settle(item.record, item.click, match, taken)

    def _due_retries(self, now: float) -> list[PendingClick]:
        if not len(self._pending) or now < self._next_retry:
            return []
        self._next_retry = now + self._retry_interval
        return self._pending.all()

    def _key(self, click: Click) -> tuple[str, int | None]:
        return (click.user_id, click.event_time_ms if self._as_of else None)

    def _hold(self, record: Record, click: Click, now: float, taken: Taken) -> None:
        self._offsets.hold((record.topic, record.partition), record.offset)
        self._waiting_users[click.user_id] += 1
        taken.counts["held"] += 1
        taken.seen.append((record.partition, click.event_time_ms))
        for overflow in self._pending.add(record, click, now):
            self._release(overflow)
            self._unmatched(overflow.record, "grace buffer full: user unknown", taken)

    def _release(self, item: PendingClick) -> None:
        self._offsets.release(item.partition, item.record.offset)
        user_id = item.click.user_id
        self._waiting_users[user_id] -= 1
        if self._waiting_users[user_id] <= 0:
            del self._waiting_users[user_id]

    def _settle(
        self,
        record: Record,
        click: Click,
        match: UserMatch,
        taken: Taken,
        *,
        expired: bool = False,
    ) -> None:
        if match.user is None and self._inner:
            taken.seen.append((record.partition, click.event_time_ms))
            grace = self._pending.grace_seconds if expired else None
            self._unmatched(record, unmatched_reason(match.found, grace), taken)
            return
        taken.rows.append(InputRow(record, click.event_time_ms, click.as_row(), match.user))

    def _unmatched(self, record: Record, reason: str, taken: Taken) -> None:
        taken.side.append(dead_letter(record, reason, self._topics.unmatched))
        taken.counts["unmatched"] += 1
