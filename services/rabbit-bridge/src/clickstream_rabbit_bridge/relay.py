"""The bridge's loop: Kafka batch in, confirmed RabbitMQ publishes out, then the commit.

A Kafka offset is committed only after every message up to it is confirmed by RabbitMQ and not
returned (DESIGN § Semantics 6). Failures are retried; a message the broker keeps returning as
unroutable is dead-lettered with the reason rather than blocking the stream for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clickstream_common.contracts import BadRecord
from clickstream_common.dead_letter import dead_letter
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit import OutboundMessage, PublishOutcome
from clickstream_common.records import OutRecord, PartitionKey, Record, RecordSink, RecordSource

from clickstream_rabbit_bridge.messages import to_delivery

log = get_logger(__name__)

RETURNED_ATTEMPTS = 3


class Publisher(Protocol):
    def publish_batch(
        self, messages: Sequence[OutboundMessage], timeout: float = ...
    ) -> PublishOutcome: ...


class Interrupted(Exception):
    """Shutdown came while a batch was still unconfirmed; its offsets stay uncommitted."""


class Relay:
    def __init__(
        self,
        *,
        source: RecordSource,
        publisher: Publisher,
        dead_letters: RecordSink,
        dead_letter_topic: str,
        metrics: Metrics,
        shutdown: Shutdown,
        batch_size: int = 2000,
        routing_prefix: str = "vip",
    ) -> None:
        self._source = source
        self._publisher = publisher
        self._dead_letters = dead_letters
        self._dead_letter_topic = dead_letter_topic
        self._metrics = metrics
        self._shutdown = shutdown
        self._batch_size = batch_size
        self._prefix = routing_prefix
        for name, text in (
            ("records_consumed", "VipAction records read from Kafka"),
            ("messages_confirmed", "messages confirmed by RabbitMQ"),
            ("publish_retries", "messages published again after a nack, return or lost link"),
            ("records_dead_lettered", "records refused or unroutable, sent to the DLQ"),
        ):
            metrics.counter(name, text)

    def run(self) -> None:
        while not self._shutdown.requested:
            try:
                self.step(0.5)
            except Interrupted:
                log.info("stopping with an unconfirmed batch; it will be read again")
                return

    def step(self, timeout: float) -> int:
        records = self._source.poll_batch(self._batch_size, timeout)
        if not records:
            return 0
        rejected: list[OutRecord] = []
        batch: list[tuple[Record, OutboundMessage]] = []
        for record in records:
            try:
                delivery = to_delivery(record, self._prefix)
            except BadRecord as exc:
                rejected.append(dead_letter(record, str(exc), self._dead_letter_topic))
                continue
            message = OutboundMessage(delivery.routing_key, delivery.body, delivery.message_id)
            batch.append((record, message))
        rejected += self._publish(batch)
        if rejected:
            self._dead_letters.send_all(rejected)
            self._dead_letters.flush()
            self._metrics.inc("records_dead_lettered", len(rejected))
        self._source.commit(_next_offsets(records))
        self._metrics.inc("records_consumed", len(records))
        return len(records)

    def _publish(self, batch: list[tuple[Record, OutboundMessage]]) -> list[OutRecord]:
        """Publish until every message is confirmed or dead-lettered as unroutable."""
        unroutable: list[OutRecord] = []
        waiting = batch
        attempt = 0
        delay = 0.2
        while waiting:
            outcome = self._publisher.publish_batch([m for _, m in waiting])
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
        return unroutable


def _next_offsets(records: list[Record]) -> dict[PartitionKey, int]:
    offsets: dict[PartitionKey, int] = {}
    for record in records:
        key = (record.topic, record.partition)
        if record.offset + 1 > offsets.get(key, -1):
            offsets[key] = record.offset + 1
    return offsets
