"""The bridge's loop: Kafka batches in, confirmed RabbitMQ publishes out, then the commits.

A Kafka offset is committed only after every message up to it is confirmed by RabbitMQ and not
returned (docs/ARCHITECTURE.md § Semantics 6). Failures are retried; a message the broker keeps
returning as unroutable is dead-lettered with the reason rather than blocking the stream for ever.

For latency, a batch is published as soon as it is read, while earlier ones are still being
confirmed (waiting for each batch's confirms before reading the next held every record arriving
meanwhile for a whole confirm round trip). Batches are settled strictly in the order they were
read, and each one's offsets are handed over only once it and every batch before it are settled,
so a commit still never covers an unconfirmed message. The commit is asynchronous: it only ever
covers confirmed messages, so the coordinator's answer need not hold up the loop. Before a
partition is revoked every batch in flight is settled (`on_revoke`), and the source then commits
what is still unconfirmed synchronously; on shutdown the same happens before the consumer closes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from clickstream_common.contracts import BadRecord
from clickstream_common.dead_letter import dead_letter
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit.confirms import OutboundMessage, PublishOutcome
from clickstream_common.records import OutRecord, PartitionKey, Record, RecordSink

from clickstream_rabbit_bridge.messages import to_delivery

log = get_logger(__name__)

RETURNED_ATTEMPTS = 3
# How long a poll waits for new records while batches are in flight, so how late a settled batch
# may be noticed. A record wakes the poll at once, so this costs no latency; only the commit
# waits, and the consumer sends commits at most every KAFKA_COMMIT_INTERVAL_MS (100) anyway. (It
# was 1 ms: a thousand wake-ups a second of an otherwise idle bridge.)
POLL_WHILE_CONFIRMING_S = 0.02


class Pending(Protocol):
    @property
    def done(self) -> bool: ...
    @property
    def settled_at(self) -> float | None: ...
    def wait(self) -> PublishOutcome: ...


class Publisher(Protocol):
    def submit(self, messages: Sequence[OutboundMessage], timeout: float = ...) -> Pending: ...
    def publish_batch(
        self, messages: Sequence[OutboundMessage], timeout: float = ...
    ) -> PublishOutcome: ...


class Source(Protocol):
    """Batches of VipAction records in; offsets of confirmed ones out, without waiting."""

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]: ...
    def commit_async(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class Interrupted(Exception):
    """Shutdown came while a batch was still unconfirmed; its offsets stay uncommitted."""


@dataclass(slots=True)
class _InFlight:
    """One batch read from Kafka: its records, what was published of them, what was refused."""

    records: list[Record]
    published: list[tuple[Record, OutboundMessage]]
    rejected: list[OutRecord]
    pending: Pending
    submitted: float = field(default_factory=time.perf_counter)


class Relay:
    def __init__(
        self,
        *,
        source: Source,
        publisher: Publisher,
        dead_letters: RecordSink,
        dead_letter_topic: str,
        metrics: Metrics,
        shutdown: Shutdown,
        batch_size: int = 2000,
        routing_prefix: str = "vip",
        max_batches_in_flight: int = 8,
        value_format: ValueFormat = JSON,
        rabbit_json: bool = True,
    ) -> None:
        """`rabbit_json`: publish the JSON form whatever the topic's format (RABBITMQ_FORMAT)."""
        self._source = source
        self._format = value_format
        self._rabbit_json = rabbit_json
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._dead_letter_topic = dead_letter_topic
        self._metrics = metrics
        self._shutdown = shutdown
        self._batch_size = batch_size
        self._prefix = routing_prefix
        self._max_in_flight = max_batches_in_flight
        self._in_flight: deque[_InFlight] = deque()
        for name, text in (
            ("records_consumed", "VipAction records read from Kafka"),
            ("messages_confirmed", "messages confirmed by RabbitMQ"),
            ("publish_retries", "messages published again after a nack, return or lost link"),
            ("records_dead_lettered", "records refused or unroutable, sent to the DLQ"),
        ):
            metrics.counter(name, text)
        metrics.histogram(
            "confirm", "a batch published to RabbitMQ until its confirms (first attempt)"
        )

    def run(self) -> None:
        try:
            while not self._shutdown.requested:
                self.step(0.5)
            self.settle_all()
        except Interrupted:
            log.info("stopping with an unconfirmed batch; it will be read again")

    def step(self, timeout: float) -> int:
        """Publish what has arrived at once, then settle the batches confirmed meanwhile (the
        oldest is waited for if too many are in flight). Returns how many records were read."""
        wait = POLL_WHILE_CONFIRMING_S if self._in_flight else timeout
        records = self._source.poll_batch(self._batch_size, wait)
        if records:
            self._in_flight.append(self._submit(records))
        while self._in_flight and (
            self._in_flight[0].pending.done or len(self._in_flight) > self._max_in_flight
        ):
            self._settle(self._in_flight.popleft())
        return len(records)

    def settle_all(self) -> None:
        """Wait for every batch in flight and commit it: before a revoke, and at shutdown."""
        while self._in_flight:
            self._settle(self._in_flight.popleft())

    def on_assign(self, _partitions: list[PartitionKey]) -> None:
        """Nothing to do: the relay keeps no state per partition."""

    def on_revoke(self, _partitions: list[PartitionKey]) -> None:
        """Runs inside `poll_batch`: what was read of the partitions is settled before they go."""
        self.settle_all()

    def _submit(self, records: list[Record]) -> _InFlight:
        rejected: list[OutRecord] = []
        published: list[tuple[Record, OutboundMessage]] = []
        for record in records:
            try:
                delivery = to_delivery(
                    record, self._prefix, self._format, as_json=self._rabbit_json
                )
            except BadRecord as exc:
                rejected.append(dead_letter(record, str(exc), self._dead_letter_topic))
                continue
            message = OutboundMessage(delivery.routing_key, delivery.body, delivery.message_id)
            published.append((record, message))
        pending = self._publisher.submit([m for _, m in published])
        return _InFlight(records, published, rejected, pending)

    def _settle(self, batch: _InFlight) -> None:
        """Every earlier batch is settled: once this one is, its offsets can be committed."""
        outcome = batch.pending.wait()
        if batch.published:
            settled = batch.pending.settled_at or time.perf_counter()
            self._metrics.observe("confirm", settled - batch.submitted)
        rejected = batch.rejected + self._publish(batch.published, outcome)
        if rejected:
            self._dead_letters.send_all(rejected)
            self._dead_letters.flush()
            self._metrics.inc("records_dead_lettered", len(rejected))
        self._source.commit_async(_next_offsets(batch.records))
        self._metrics.inc("records_consumed", len(batch.records))

    def _publish(
        self, batch: list[tuple[Record, OutboundMessage]], outcome: PublishOutcome
    ) -> list[OutRecord]:
        """Given the first attempt's `outcome`, publish again until every message is confirmed
        or dead-lettered as unroutable."""
        unroutable: list[OutRecord] = []
        waiting = batch
        attempt = 0
        delay = 0.2
        while waiting:
            self._metrics.inc("messages_confirmed", outcome.confirmed)
            if outcome.ok:
                break
            attempt += 1
            failed = dict(outcome.failed)
            retry: list[tuple[Record, OutboundMessage]] = []
            for index, reason in failed.items():
                record, message = waiting[index]
                if "returned" in reason and attempt >= RETURNED_ATTEMPTS:
                    unroutable.append(
                        dead_letter(record, f"rabbitmq: {reason}", self._dead_letter_topic)
                    )
                else:
                    retry.append((record, message))
            if retry:
                self._metrics.inc("publish_retries", len(retry))
                log.warning(
                    "publish failures, retrying",
                    failed=len(retry),
                    first_reason=next(iter(failed.values())),
                    attempt=attempt,
                )
                if self._shutdown.wait(delay):
                    raise Interrupted
                delay = min(delay * 2, 5.0)
            waiting = retry
            if waiting:
                outcome = self._publisher.publish_batch([m for _, m in waiting])
        return unroutable


def _next_offsets(records: list[Record]) -> dict[PartitionKey, int]:
    offsets: dict[PartitionKey, int] = {}
    for record in records:
        key = (record.topic, record.partition)
        if record.offset + 1 > offsets.get(key, -1):
            offsets[key] = record.offset + 1
    return offsets
