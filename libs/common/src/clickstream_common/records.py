"""A broker-neutral view of Kafka records, and the ports domain code reaches Kafka through (record
source, sink, batch committer), so it needs no client imports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


class OutRecord(NamedTuple):
    """A record to produce; headers are UTF-8 strings on the wire."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, str], ...] = ()


PartitionKey = tuple[str, int]


class RecordSource(Protocol):
    """What a service's loop needs from a consumer group: batches in, explicit commits out."""

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]: ...
    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class AsyncOffsetCommits(Protocol):
    """Commits that do not wait for the coordinator; whoever implements it commits what is still
    unconfirmed synchronously before a partition is given up or the consumer closes."""

    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class RecordSink(Protocol):
    """What it needs from a producer: `flush` raises unless everything sent was acknowledged."""

    def send_all(self, records: Iterable[OutRecord]) -> None: ...
    def flush(self, timeout: float = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class Position:
    """Where a consumer group resumes a partition: the next offset to read, and the note stored
    with that commit (Kafka's offset metadata; "" for none), read back by the next owner."""

    offset: int
    note: str = ""


class BatchFenced(RuntimeError):
    """The group moved on from this member (a rebalance, or its session expired) while its batch
    was committing: nothing of the batch is visible, and the consumer has been sent back to the
    committed positions of `partitions`, so the caller must drop its own progress there and
    resume from those positions too."""

    def __init__(self, partitions: Sequence[PartitionKey], reason: str) -> None:
        super().__init__(reason)
        self.partitions = list(partitions)


class BatchCommitter(Protocol):
    """The delivery strategy: how one batch's outputs, and the input positions they complete,
    reach Kafka. `commit_batch` returns once both are durable and raises otherwise, in which case
    none of the batch may be counted as done.

    `exactly_once` says whether outputs and positions commit atomically; only then may a position
    carry a note of progress past its offset, and `resume` return it to a partition's next owner.
    """

    @property
    def exactly_once(self) -> bool: ...
    def commit_batch(
        self, outputs: Sequence[OutRecord], positions: Mapping[PartitionKey, Position]
    ) -> None: ...
    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]: ...


class AtLeastOnceCommitter:
    """Outputs first, acknowledged; then the offsets. A crash between the two re-emits the batch's
    outputs on restart, each with the same event_id.

    The offsets are committed asynchronously: they only ever cover acknowledged outputs, so the
    coordinator's answer need not hold up the next batch (a synchronous commit was a fifth of each
    batch's time). The source commits what is unconfirmed on revoke and on close.
    """

    exactly_once = False

    def __init__(self, sink: RecordSink, source: AsyncOffsetCommits) -> None:
        self._sink = sink
        self._source = source

    def commit_batch(
        self, outputs: Sequence[OutRecord], positions: Mapping[PartitionKey, Position]
    ) -> None:
        if outputs:
            self._sink.send_all(outputs)
            self._sink.flush()
        if positions:
            self._source.commit_async({partition: p.offset for partition, p in positions.items()})

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        """Nothing beyond the committed offset, where the consumer resumes by itself."""
        return {}
