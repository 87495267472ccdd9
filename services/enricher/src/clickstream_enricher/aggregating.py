"""The enricher's loop for a windowed query: over one stream (the sessions over VipActions), or
over clicks joined to their users.

Per batch: the input turns records into rows (`window_inputs`: bad records to the DLQ, clicks
without a user waiting for it or to the unmatched topic), filter by WHERE, hand each row to the
window operator (late rows to `<input>.late`, with the reason), flush it, and deliver the
batch's output rows, its changelog changes and its input positions (up to the oldest click still
waiting) through the delivery strategy: at least
once, the rows acknowledged, then the changelog, then the offsets committed; exactly once, all
three in one transaction. With nothing read, a flush still runs: the watermark moves with the
wall clock, so a session closes one gap after its last click even when no one else clicks.

On assignment a partition's state is restored from its changelog partition before any of its
records is read (the rebalance listener runs inside the consumer's poll, so no record of it can
arrive first); on revocation its state is dropped, already durable in the changelog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import msgspec
from clickstream_common.dead_letter import dead_letter
from clickstream_common.delivery import BatchCommitter
from clickstream_common.formats import JSON, RowRejected, ValueFormat
from clickstream_common.gc_pauses import collection_paused
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.records import BatchFenced, OutRecord, PartitionKey, Position, RecordSource

from clickstream_enricher.window_inputs import WindowInput
from clickstream_enricher.windows.operator import BadGroupKey, Emission, WindowOperator
from clickstream_enricher.windows.plan import AggregateQuery

log = get_logger(__name__)


class StateUnreadable(RuntimeError):
    """The changelog holds state in a form this version cannot decode."""


class OutputRefused(RuntimeError):
    """The output's schema cannot carry a row the query made (a column of the wrong type)."""


class Changelog(Protocol):
    """A changelog topic's partitions, read whole (`ChangelogReader`)."""

    @property
    def topic(self) -> str: ...
    def read(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]: ...


@dataclass(frozen=True)
class WindowTopics:
    output: str
    dead_letter: str
    late: str


class WindowProcessor:
    def __init__(
        self,
        *,
        source: RecordSource,
        committer: BatchCommitter,
        query: AggregateQuery,
        input_rows: WindowInput,
        operator: WindowOperator,
        changelog: Changelog,
        topics: WindowTopics,
        metrics: Metrics,
        batch_size: int = 1000,
        value_format: ValueFormat = JSON,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._source = source
        self._write = value_format.writer(topics.output, query.target, query.output_columns)
        self._committer = committer
        self._input = input_rows
        self._where = query.where
        self._operator = operator
        self._changelog = changelog
        self._topics = topics
        self._metrics = metrics
        self._batch_size = batch_size
        self._clock = clock
        self._sleep = sleep
        self._assigned: set[PartitionKey] = set()
        self._restoring = False
        for name, text in (
            ("records_consumed", "input records read"),
            ("records_aggregated", "input rows added to their windows"),
            ("records_filtered", "input rows the WHERE clause dropped"),
            ("records_dead_lettered", "malformed input records sent to the DLQ"),
            ("records_unmatched", "clicks with no user to join, sent to the unmatched topic"),
            ("records_held", "clicks held back to wait for their user"),
            ("records_already_done", "records a partition's previous owner finished"),
            ("records_late", "rows behind the watermark for their window, sent to <input>.late"),
            ("window_rows", "update, final and retraction rows produced"),
            ("windows_final", "final rows produced (windows closed)"),
            ("changelog_records", "state changes written to the changelog"),
            ("changelog_restored", "changelog records read back on assignment"),
            ("batches_fenced", "batches refused because the group moved on, read again"),
        ):
            metrics.counter(name, text)
        metrics.gauge(
            "records_waiting", "clicks waiting for their user now", lambda: input_rows.waiting
        )
        metrics.gauge("open_windows", "windows open now", lambda: operator.open_windows)
        metrics.gauge(
            "state_bytes", "encoded bytes of the state held", lambda: operator.state_bytes
        )

    @property
    def ready(self) -> bool:
        """Not while a partition's state is being restored: its records wait for it."""
        return not self._restoring

    def on_assign(self, partitions: list[PartitionKey]) -> None:
        self._input.assign(partitions)
        self._restoring = True
        try:
            with collection_paused():
                self._restore(partitions)
        finally:
            self._restoring = False

    def _restore(self, partitions: list[PartitionKey]) -> None:
        for topic, partition in partitions:
            started = self._clock()
            try:
                restored = self._operator.assign(partition, self._changelog.read(partition))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise StateUnreadable(
                    f"changelog {self._changelog.topic} partition {partition} holds state this "
                    f"enricher cannot read ({exc}): another version of the query or the enricher "
                    "wrote it. Give the query a new QUERY_NAME (a new changelog) and "
                    "CONSUMER_GROUP to start afresh"
                ) from None
            seconds = self._clock() - started
            self._metrics.inc("changelog_restored", restored)
            log.info(
                "state restored",
                changelog=self._changelog.topic,
                partition=partition,
                records=restored,
                seconds=round(seconds, 3),
                records_per_second=round(restored / seconds) if seconds > 0 else None,
            )
            self._assigned.add((topic, partition))

    def on_revoke(self, partitions: list[PartitionKey]) -> None:
        self._operator.revoke(partition for _, partition in partitions)
        self._input.revoke(partitions)
        self._assigned.difference_update(partitions)

    def run(self, shutdown: Shutdown) -> None:
        while not shutdown.requested:
            self.step(0.1 if self._input.waiting else 0.5)
        self.drain()

    def drain(self) -> None:
        """Settle the clicks still waiting for their user, reading nothing new: each does within
        the grace period, and then the commit covers everything read."""
        while self._input.waiting:
            self.step(0, consume=False)
            self._sleep(0.1)

    def step(self, timeout: float, *, consume: bool = True) -> int:
        """Read one batch, apply it, and deliver what it changed; returns the records read."""
        records = self._source.poll_batch(self._batch_size, timeout) if consume else []
        taken = self._input.take(records)
        outputs = taken.side
        counts = taken.counts
        where = self._where
        operator = self._operator
        for partition, event_ms in taken.seen:
            operator.observe(partition, event_ms)
        for item in taken.rows:
            record = item.record
            if where is not None and where(item.row, item.user) is not True:
                operator.observe(record.partition, item.event_ms)
                counts["filtered"] += 1
                continue
            try:
                late = operator.add(
                    record.partition, record.offset, item.event_ms, item.row, item.user
                )
            except BadGroupKey as exc:
                outputs.append(dead_letter(record, str(exc), self._topics.dead_letter))
                counts["dead_lettered"] += 1
                continue
            if late is None:
                counts["aggregated"] += 1
            else:
                outputs.append(dead_letter(record, late, self._topics.late))
                counts["late"] += 1
        self._evict_committed()
        emission = operator.flush()
        outputs += self._rows(emission)
        changelog = self._changelog_records(emission)
        positions = self._input.positions()
        try:
            self._deliver(outputs, changelog, positions)
        except BatchFenced as exc:
            self._reread(exc)
            return len(records)
        self._input.mark_committed(positions)
        metrics = self._metrics
        metrics.inc("records_consumed", len(records))
        for name in (
            "aggregated",
            "filtered",
            "late",
            "dead_lettered",
            "unmatched",
            "held",
            "already_done",
        ):
            metrics.inc(f"records_{name}", counts[name])
        metrics.inc("window_rows", len(emission.rows))
        metrics.inc("windows_final", sum(1 for row in emission.rows if row.value["final"]))
        metrics.inc("changelog_records", len(emission.changelog))
        return len(records)

    def _deliver(
        self,
        outputs: list[OutRecord],
        changelog: list[OutRecord],
        positions: dict[PartitionKey, Position],
    ) -> None:
        """Exactly once, all in one transaction. At least once, the rows first, acknowledged,
        and only then the changelog: state that says a window was closed (or a record counted)
        must never be durable while the row saying so is not, or a crash between the two would
        lose that row for good (the replay skips what the state already holds). The other way
        round, a crash only repeats rows."""
        if self._committer.exactly_once:
            if outputs or changelog or positions:
                self._committer.commit_batch(outputs + changelog, positions)
            return
        if outputs:
            self._committer.commit_batch(outputs, {})
        if changelog or positions:
            self._committer.commit_batch(changelog, positions)

    def _rows(self, emission: Emission) -> list[OutRecord]:
        """A row the output's schema cannot carry stops the query: the schema was checked
        against the query's columns at start, so this is a type the schema got wrong, and no
        one input record is to blame for an aggregate."""
        output, write = self._topics.output, self._write
        try:
            return [
                OutRecord(output, row.user_id.encode(), write(row.value)) for row in emission.rows
            ]
        except RowRejected as exc:
            raise OutputRefused(f"{exc}: fix the output's schema for the query") from None

    def _changelog_records(self, emission: Emission) -> list[OutRecord]:
        changelog = self._changelog.topic
        return [
            OutRecord(changelog, entry.key, entry.value, partition=entry.partition)
            for entry in emission.changelog
        ]

    def _evict_committed(self) -> None:
        """Keys whose windows are all closed go once no replay can reach their records."""
        for (topic, partition), offset in self._committer.durable_offsets().items():
            if (topic, partition) in self._assigned:
                self._operator.committed(partition, offset)

    def _reread(self, fenced: BatchFenced) -> None:
        """Nothing of the batch was committed, and the consumer is back at the committed
        positions: the fenced partitions' state is restored again from the changelog, which
        holds exactly what was committed."""
        self._metrics.inc("batches_fenced")
        log.warning(
            "batch refused, the group moved on; restoring and reading again",
            reason=str(fenced),
            partitions=fenced.partitions,
        )
        self.on_revoke(fenced.partitions)
        self.on_assign(fenced.partitions)
