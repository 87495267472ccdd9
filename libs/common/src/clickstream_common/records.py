"""A broker-neutral view of Kafka records, and the ports domain code reaches Kafka through (record
source, sink, rebalance listener, and the errors they raise), so it needs no client imports. The
delivery strategies built on them are in `clickstream_common.delivery`."""

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
    """A record to produce; headers are UTF-8 strings on the wire. `partition` None: by key, as
    the default partitioner places it; set for a changelog, whose partition is its input's."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, str], ...] = ()
    partition: int | None = None


PartitionKey = tuple[str, int]


class RecordSource(Protocol):
    """What a service's loop needs from a consumer group: batches in, explicit commits out."""

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]: ...
    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class AsyncOffsetCommits(Protocol):
    """Commits that do not wait for the coordinator; whoever implements it commits what is still
    unconfirmed synchronously before a partition is given up or the consumer closes."""

    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class RebalanceListener(Protocol):
    """Told which partitions a consumer takes over and gives up; both run inside its poll, on the
    caller's thread, between batches. Partitions lost (the group moved on without this member)
    reach `on_revoke` too: either way, what was read of them is no longer this member's."""

    def on_assign(self, partitions: list[PartitionKey]) -> None: ...
    def on_revoke(self, partitions: list[PartitionKey]) -> None: ...


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


class TransactionError(RuntimeError):
    """A transaction was aborted and could not be completed on retry; nothing of it is visible."""


class GroupFenced(TransactionError):
    """The offsets were refused because the group has a newer generation than the metadata they
    came with: trying again with it cannot succeed, so the transaction is aborted at once."""
