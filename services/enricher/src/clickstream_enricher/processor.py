"""The enricher's loop: the seed's query over clicks, joined by batch lookups to user-state.

Per batch: decode (bad records to the DLQ), one lookup for all new and waiting clicks, evaluate
the compiled query, then hand the outputs and the positions they complete to the delivery strategy
(a `BatchCommitter`, chosen by ENRICHER_DELIVERY in __main__): at least once, produce, wait for
Kafka's acknowledgement, and only then commit the offsets; exactly once, both in one transaction.

At least once the batches are pipelined one deep on both sides: a batch read is decoded and its
lookup sent before the previous batch is evaluated and produced, its answer read only when it is
finished, so user-state answers while the enricher works; and a batch's acknowledgements are
awaited, and its offsets committed, only after the next batch is evaluated and produced
(`PipelinedCommitter`), so Kafka acknowledges while the enricher works. The batch read ahead has
no effect anyone can see until it is finished: nothing is produced, held or marked done for it.

Rebalances happen only inside `poll_batch`, at the top of a step; `on_revoke` first waits for
every batch produced to be acknowledged and its commit handed over (exactly once, no transaction
is open then), and the consumer commits that synchronously before it gives a partition up. A
batch read ahead drops the revoked partitions' records, and the clicks still waiting for their
user are dropped too; the next owner reads them again from the committed offset they pin.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from clickstream_common.contracts import BadRecord, Click, decode_click, event_id
from clickstream_common.dead_letter import dead_letter
from clickstream_common.delivery import BatchCommitter
from clickstream_common.formats import JSON, RowRejected, ValueFormat
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.lookup import Found
from clickstream_common.metrics import Metrics
from clickstream_common.records import (
    BatchFenced,
    OutRecord,
    PartitionKey,
    Record,
    RecordSource,
)

from clickstream_enricher.directory import (
    NOTHING_ASKED,
    PendingLookup,
    UserDirectory,
    UserMatch,
    unmatched_reason,
)
from clickstream_enricher.offsets import OffsetTracker
from clickstream_enricher.pending import PendingClick, PendingClicks
from clickstream_enricher.query import CompiledQuery
from clickstream_enricher.rows import LazyRow

log = get_logger(__name__)

JoinMode = Literal["as_of", "latest"]


@dataclass(frozen=True)
class OutputTopics:
    vip_actions: str
    dead_letter: str
    unmatched: str


@dataclass(slots=True)
class _Batch:
    """Read and decoded, its lookup started; finishing it is what makes it visible."""

    records: list[Record]
    fresh: list[tuple[Record, Click]]
    bad: list[tuple[Record, str]]
    retries: list[PendingClick]
    lookup: PendingLookup
    # Partitions given up since it was read: their records are dropped, not finished.
    revoked: set[PartitionKey] = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)


class ClickProcessor:
    def __init__(
        self,
        *,
        source: RecordSource,
        committer: BatchCommitter,
        users: UserDirectory,
        query: CompiledQuery,
        topics: OutputTopics,
        join_mode: JoinMode,
        pending: PendingClicks,
        metrics: Metrics,
        batch_size: int = 1000,
        pipelined: bool = False,
        value_format: ValueFormat = JSON,
        retry_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._source = source
        self._committer = committer
        if pipelined and committer.exactly_once:
            # The offset notes are restored as records are admitted, which must not run ahead
            # of the batch being committed.
            raise ValueError("exactly-once delivery does not read ahead")
        self._users = users
        self._pipelined = pipelined
        self._ahead: _Batch | None = None
        self._query = query
        self._topics = topics
        self._format = value_format
        self._write = value_format.writer(
            topics.vip_actions, query.target, ("event_id", *query.columns)
        )
        self._as_of = join_mode == "as_of"
        self._pending = pending
        self._metrics = metrics
        self._batch_size = batch_size
        self._retry_interval = retry_interval
        self._clock = clock
        self._sleep = sleep
        self._next_retry = 0.0
        self._in_batch = False
        # What a batch did, click by click; added to the metrics once, when it is finished.
        self._counts: Counter[str] = Counter()
        self.offsets = OffsetTracker(notes=committer.exactly_once)
        for name, text in (
            ("clicks_consumed", "click records read"),
            ("vip_actions", "VipActions produced"),
            ("clicks_filtered", "clicks joined but not selected by the query"),
            ("clicks_dead_lettered", "malformed clicks sent to the DLQ"),
            ("clicks_unmatched", "clicks sent to the unmatched topic"),
            ("clicks_held", "clicks held back to wait for their user"),
            ("clicks_already_done", "clicks a partition's previous owner finished and committed"),
            ("batches_fenced", "batches refused because the group moved on, read again"),
        ):
            metrics.counter(name, text)
        metrics.gauge("clicks_pending", "clicks waiting for their user now", lambda: len(pending))
        metrics.histogram("batch", "a batch from read to committed, its lookup included")
        metrics.histogram(
            "click_to_vip_action",
            "from a click's Kafka timestamp to its VipAction acknowledged by Kafka",
        )
        # The clicks' Kafka timestamps of the batch's VipActions.
        self._emitted_ms: list[int] = []
        metrics.gauge(
            "progress_notes_truncated",
            "exactly-once commits whose progress note was cut to fit Kafka's metadata limit",
            lambda: self.offsets.notes_truncated,
        )

    @property
    def ready(self) -> bool:
        """Always, once subscribed: taking partitions over needs no state restored."""
        return True

    def on_assign(self, partitions: list[PartitionKey]) -> None:
        """Take partitions over from their committed positions, and (exactly once) from the note
        there of what their last owner finished past a held click, so it is not emitted twice."""
        self.offsets.forget(partitions)
        resumed = [
            partition
            for partition, position in self._committer.resume(partitions).items()
            if self.offsets.restore(partition, position)
        ]
        if resumed:
            log.info("resuming past clicks held by the previous owner", partitions=resumed)

    def on_revoke(self, partitions: list[PartitionKey]) -> None:
        """Called from inside `poll_batch` only, so every finished batch is already committed;
        the waiting clicks are re-read by the next owner from the last commit."""
        if self._in_batch:
            raise RuntimeError("partitions revoked while a batch was in flight")
        self._committer.settle()
        if self._ahead is not None:
            self._ahead.revoked.update(partitions)
        self._pending.forget(partitions)
        self.offsets.forget(partitions)

    def run(self, shutdown: Shutdown) -> None:
        while not shutdown.requested:
            self.step(0.1 if len(self._pending) else 0.5)
        self.drain()

    def drain(self) -> None:
        """Finish the batch read ahead and the clicks still waiting for their user, reading
        nothing new.

        Each resolves or expires within the grace period, so this ends within it; afterwards the
        commit covers everything read and a restart re-emits nothing.
        """
        self._finish_ahead()
        if len(self._pending):
            log.info("draining clicks that wait for their user", pending=len(self._pending))
        while len(self._pending):
            self.step(0, consume=False)
            self._sleep(self._retry_interval)
        self._committer.settle()

    def step(self, timeout: float, *, consume: bool = True) -> int:
        """Read one batch and finish the one before it (or this one, when not pipelined);
        returns the records read. With a batch read ahead, the read does not wait."""
        if self._ahead is not None:
            timeout = 0
        records = self._source.poll_batch(self._batch_size, timeout) if consume else []
        self._in_batch = True
        try:
            batch = self._read(records)
            self._finish_ahead()
            if records and self._pipelined:
                self._ahead = batch
            else:
                self._finish(batch)
            if not records:
                # Nothing new to overlap with: the last batch's acknowledgements and commit
                # are not left waiting for traffic that may not come.
                self._committer.settle()
        finally:
            self._in_batch = False
        return len(records)

    def _finish_ahead(self) -> None:
        batch, self._ahead = self._ahead, None
        if batch is not None:
            self._finish(batch)

    def _read(self, records: list[Record]) -> _Batch:
        """Decode, and start the lookup for the new clicks and the waiting ones due a retry."""
        fresh: list[tuple[Record, Click]] = []
        bad: list[tuple[Record, str]] = []
        already_done = 0
        admit = self.offsets.admit
        for record in records:
            if not admit((record.topic, record.partition), record.offset):
                already_done += 1
                continue
            try:
                fresh.append((record, decode_click(record, reader=self._format)))
            except BadRecord as exc:
                bad.append((record, str(exc)))
        self._metrics.inc("clicks_consumed", len(records))
        self._metrics.inc("clicks_already_done", already_done)

        retries = self._due_retries(self._clock())
        keys = [self._key(click) for _, click in fresh]
        keys += [self._key(item.click) for item in retries]
        lookup = self._users.start(keys) if keys else NOTHING_ASKED
        return _Batch(records, fresh, bad, retries, lookup)

    def _finish(self, batch: _Batch) -> None:
        """Join, evaluate and deliver a batch, then commit the offsets it completes."""
        try:
            self._finish_counted(batch)
        finally:
            counts, self._counts = self._counts, Counter()
            for name, amount in counts.items():
                self._metrics.inc(name, amount)

    def _finish_counted(self, batch: _Batch) -> None:
        matches = batch.lookup.result()
        now = self._clock()
        revoked = batch.revoked
        outputs = [
            dead_letter(record, error, self._topics.dead_letter)
            for record, error in batch.bad
            if (record.topic, record.partition) not in revoked
        ]
        self._counts["clicks_dead_lettered"] += len(outputs)

        fresh = batch.fresh
        for (record, click), match in zip(fresh, matches, strict=False):
            if revoked and (record.topic, record.partition) in revoked:
                continue
            if match.found == "unknown" and self._pending.grace_seconds > 0:
                self._hold(record, click, now, outputs)
            else:
                self._settle(record, click, match, outputs)
        for item, match in zip(batch.retries, matches[len(fresh) :], strict=True):
            # Gone already if it expired, or its partition was given up, since the lookup.
            if match.found != "unknown" and self._pending.remove(item):
                self._release(item)
                self._settle(item.record, item.click, match, outputs)
        for item in self._pending.expired(now):
            self._release(item)
            self._settle(item.record, item.click, UserMatch(Found.UNKNOWN), outputs, expired=True)

        done = self.offsets.done
        for record in batch.records:
            if not revoked or (record.topic, record.partition) not in revoked:
                done((record.topic, record.partition), record.offset)
        positions = self.offsets.positions()
        emitted, self._emitted_ms = self._emitted_ms, []
        if not (outputs or positions):
            self._observe(batch.started, emitted)
            return
        # The positions are committed once the outputs are acknowledged (then `_observe` runs);
        # a delivery that fails stops the service before anything past it is committed.
        try:
            self._committer.commit_batch(
                outputs, positions, lambda: self._observe(batch.started, emitted)
            )
        except BatchFenced as exc:
            self._reread(exc)
            return
        self.offsets.mark_committed(positions)

    def _observe(self, started: float, emitted: list[int]) -> None:
        self._metrics.observe("batch", time.perf_counter() - started)
        if emitted:
            now_ms = time.time() * 1000
            self._metrics.observe_all(
                "click_to_vip_action", [(now_ms - at) / 1000 for at in emitted]
            )

    def _reread(self, fenced: BatchFenced) -> None:
        """Nothing of the batch was committed and the consumer is back at the committed
        positions: drop this member's progress past them, and take them up as a new owner would
        (the commit's note says what is finished past a held click)."""
        self._metrics.inc("batches_fenced")
        log.warning(
            "batch refused, the group moved on; reading again from the commits",
            reason=str(fenced),
            partitions=fenced.partitions,
        )
        self._pending.forget(fenced.partitions)
        self.on_assign(fenced.partitions)

    def _key(self, click: Click) -> tuple[str, int | None]:
        return (click.user_id, click.event_time_ms if self._as_of else None)

    def _due_retries(self, now: float) -> list[PendingClick]:
        if not len(self._pending) or now < self._next_retry:
            return []
        self._next_retry = now + self._retry_interval
        return self._pending.all()

    def _hold(self, record: Record, click: Click, now: float, outputs: list[OutRecord]) -> None:
        self.offsets.hold((record.topic, record.partition), record.offset)
        self._counts["clicks_held"] += 1
        for overflow in self._pending.add(record, click, now):
            self._release(overflow)
            outputs.append(self._unmatched(overflow.record, "grace buffer full: user unknown"))

    def _release(self, item: PendingClick) -> None:
        self.offsets.release(item.partition, item.record.offset)

    def _settle(
        self,
        record: Record,
        click: Click,
        match: UserMatch,
        outputs: list[OutRecord],
        *,
        expired: bool = False,
    ) -> None:
        user = match.user
        row = self._query.evaluate(LazyRow(click.as_row), user)
        if row is not None:
            value = {"event_id": event_id(record.topic, record.partition, record.offset), **row}
            try:
                payload = self._write(value)
            except RowRejected as exc:  # a row the output's schema cannot carry, a NULL say
                outputs.append(dead_letter(record, str(exc), self._topics.dead_letter))
                self._counts["clicks_dead_lettered"] += 1
                return
            outputs.append(OutRecord(self._topics.vip_actions, click.user_id.encode(), payload))
            self._counts["vip_actions"] += 1
            self._emitted_ms.append(record.timestamp_ms)
        elif user is None and self._query.join == "inner":
            grace = self._pending.grace_seconds if expired else None
            outputs.append(self._unmatched(record, unmatched_reason(match.found, grace)))
        else:
            self._counts["clicks_filtered"] += 1

    def _unmatched(self, record: Record, reason: str) -> OutRecord:
        self._counts["clicks_unmatched"] += 1
        return dead_letter(record, reason, self._topics.unmatched)
