"""The delivery strategies: how one batch's outputs, and the input positions they complete, reach
Kafka (docs/ARCHITECTURE.md § Semantics 6). At least once by default; exactly once for the Kafka
leg with a transaction.

Client-free: the strategies see the adapters through the protocols below, so domain code that
takes a `BatchCommitter` imports no Kafka client.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from clickstream_common.records import (
    AsyncOffsetCommits,
    BatchFenced,
    GroupFenced,
    OutRecord,
    PartitionKey,
    Position,
    RecordSink,
)


class BatchCommitter(Protocol):
    """The delivery strategy: how one batch's outputs, and the input positions they complete,
    reach Kafka. `commit_batch` returns once both are durable and raises otherwise, in which case
    none of the batch may be counted as done.

    `exactly_once` says whether outputs and positions commit atomically; only then may a position
    carry a note of progress past its offset, and `resume` return it to a partition's next owner.

    `on_durable` is called once the batch is durable: before `commit_batch` returns, except for a
    strategy that overlaps a batch's acknowledgements with the next one (`PipelinedCommitter`),
    where it is called by a later `commit_batch` or by `settle`.
    """

    @property
    def exactly_once(self) -> bool: ...
    def start(self) -> None:
        """Before the first offset is read: exactly once, fence what a previous instance left
        open."""

    def commit_batch(
        self,
        outputs: Sequence[OutRecord],
        positions: Mapping[PartitionKey, Position],
        on_durable: Callable[[], None] | None = None,
    ) -> None: ...
    def settle(self) -> None:
        """Returns once every batch handed over is durable (before a revoke, at shutdown)."""

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]: ...
    def durable_offsets(self) -> Mapping[PartitionKey, int]:
        """Per partition, the committed offset a restart would resume from at the earliest:
        state derived from records below it can no longer be replayed."""
        ...


class ConfirmingSource(AsyncOffsetCommits, Protocol):
    def confirmed_offsets(self) -> Mapping[PartitionKey, int]: ...


class AtLeastOnceCommitter:
    """Outputs first, acknowledged; then the offsets. A crash between the two re-emits the batch's
    outputs on restart, each with the same event_id.

    The offsets are committed asynchronously: they only ever cover acknowledged outputs, so the
    coordinator's answer need not hold up the next batch (a synchronous commit was a fifth of each
    batch's time). The source commits what is unconfirmed on revoke and on close.
    """

    exactly_once = False

    def __init__(self, sink: RecordSink, source: ConfirmingSource) -> None:
        self._sink = sink
        self._source = source

    def start(self) -> None:
        """Nothing to set up: a plain producer needs no handshake."""

    def commit_batch(
        self,
        outputs: Sequence[OutRecord],
        positions: Mapping[PartitionKey, Position],
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        if outputs:
            self._sink.send_all(outputs)
            self._sink.flush()
        if positions:
            self._source.commit_async({partition: p.offset for partition, p in positions.items()})
        if on_durable is not None:
            on_durable()

    def settle(self) -> None:
        """Nothing outstanding: `commit_batch` waits for its acknowledgements."""

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        """Nothing beyond the committed offset, where the consumer resumes by itself."""
        return {}

    def durable_offsets(self) -> Mapping[PartitionKey, int]:
        """Only what the coordinator confirmed: an asynchronous commit may still fail."""
        return self._source.confirmed_offsets()


class Acknowledgements(Protocol):
    """One batch's acknowledgements (`BatchAcks`)."""

    @property
    def done(self) -> bool: ...
    def wait(self, timeout: float = ...) -> None:
        """Raises unless every record of the batch was acknowledged."""


class TrackedSink(RecordSink, Protocol):
    def send_tracked(self, records: Sequence[OutRecord]) -> Acknowledgements: ...


class PipelinedCommitter(AtLeastOnceCommitter):
    """At least once, with a batch's acknowledgements awaited while the next batch is evaluated
    (waiting for them at once was a sixth of the enricher's time).

    The rule is the same as `AtLeastOnceCommitter`'s: a batch's offsets are committed only once
    its outputs, and every earlier batch's, are acknowledged; batches are settled in the order
    they were handed over. At most one batch is left outstanding when `commit_batch` returns.
    A failed delivery is raised by the `commit_batch` or `settle` that finds it, and nothing of
    that batch or any later one is committed.
    """

    def __init__(self, sink: TrackedSink, source: ConfirmingSource) -> None:
        super().__init__(sink, source)
        self._tracked = sink
        self._outstanding: deque[
            tuple[Acknowledgements | None, dict[PartitionKey, int], Callable[[], None] | None]
        ] = deque()

    def commit_batch(
        self,
        outputs: Sequence[OutRecord],
        positions: Mapping[PartitionKey, Position],
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        acks = self._tracked.send_tracked(outputs) if outputs else None
        offsets = {partition: p.offset for partition, p in positions.items()}
        self._outstanding.append((acks, offsets, on_durable))
        self._settle(keep=1)

    def settle(self) -> None:
        self._settle(keep=0)

    def _settle(self, keep: int) -> None:
        outstanding = self._outstanding
        while outstanding:
            acks, offsets, on_durable = outstanding[0]
            if acks is not None:
                if len(outstanding) <= keep and not acks.done:
                    return
                acks.wait()
            outstanding.popleft()
            if offsets:
                self._source.commit_async(offsets)
            if on_durable is not None:
                on_durable()


class TransactionalSink(Protocol):
    """Records and group offsets in one transaction (`TransactionalProducer`); raises
    `GroupFenced` when the group has moved on from the member the metadata names."""

    def start(self) -> None: ...

    def transact(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[PartitionKey, Position],
        group_metadata: object,
        landed: Callable[[], bool] | None = None,
    ) -> None: ...


class GroupMember(Protocol):
    """What a transaction needs of the consumer whose positions it commits (`BatchConsumer`)."""

    def consumer_group_metadata(self) -> object: ...
    def committed_positions(
        self, partitions: Iterable[PartitionKey], timeout: float = ...
    ) -> dict[PartitionKey, Position]: ...
    def rewind(self, timeout: float = ...) -> list[PartitionKey]: ...


class ExactlyOnceCommitter:
    """The exactly-once delivery strategy: a batch's outputs and its consumer positions (with
    their notes, as offset metadata) go in one transaction, so a record's output and its
    consumption become visible together or not at all."""

    exactly_once = True

    def __init__(self, producer: TransactionalSink, consumer: GroupMember) -> None:
        self._producer = producer
        self._consumer = consumer
        self._durable: dict[PartitionKey, int] = {}

    def start(self) -> None:
        """`init_transactions`: fences a previous instance with the same transactional id and
        aborts what it left open, so its uncommitted outputs never become visible."""
        self._producer.start()

    def commit_batch(
        self,
        outputs: Sequence[OutRecord],
        positions: Mapping[PartitionKey, Position],
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        def landed() -> bool:
            committed = self._consumer.committed_positions(positions, timeout=120)
            return bool(positions) and all(committed.get(p) == pos for p, pos in positions.items())

        try:
            self._producer.transact(
                outputs, positions, self._consumer.consumer_group_metadata(), landed
            )
        except GroupFenced as exc:
            raise BatchFenced(self._consumer.rewind(), str(exc)) from exc
        self._durable.update((partition, p.offset) for partition, p in positions.items())
        if on_durable is not None:
            on_durable()

    def settle(self) -> None:
        """Nothing outstanding: each transaction is committed before `commit_batch` returns."""

    def durable_offsets(self) -> Mapping[PartitionKey, int]:
        """What the last committed transactions committed: durable once `commit_batch` returns."""
        return self._durable

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        # A transaction a dead instance left open holds the answer back until it is aborted:
        # at once by a new instance with its id, else at transaction.timeout.ms (60 s).
        return self._consumer.committed_positions(partitions, timeout=120)
