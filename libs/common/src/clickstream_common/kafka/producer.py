"""Checked produce: every record sent is acknowledged by Kafka, or `flush` raises."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import DeliveryError
from clickstream_common.records import OutRecord
from clickstream_common.settings import KafkaSettings


def produce(
    producer: Producer,
    record: OutRecord,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    """Queue `record`, waiting for room while the local queue is full (backpressure).

    A plain loop, not a retry policy: a full queue always drains as deliveries are served, and
    this runs once a record, where the cost of anything more would show.
    """
    while True:
        try:
            # Two calls, not one with partition=-1 ("unassigned"): that form measured 10 ms
            # slower at p50 end to end in `bench --sections latency` (A/B/A/B, 2026-12-03).
            if record.partition is None:
                producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers) if record.headers else None,
                    on_delivery=on_delivery,
                )
            else:
                producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    partition=record.partition,
                    headers=list(record.headers) if record.headers else None,
                    on_delivery=on_delivery,
                )
            return
        except BufferError:
            # The local queue is full: serve delivery reports to make room, then retry.
            producer.poll(0.1)


def producer_config(
    settings: KafkaSettings, options: Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Every producer of ours: idempotent, so librdkafka's retries never duplicate or reorder a
    partition; 5 ms of linger and lz4 for throughput; its log routed into the service's."""
    return {
        **settings.client_config(),
        "enable.idempotence": True,
        "linger.ms": 5,
        "compression.type": "lz4",
        "logger": LIBRDKAFKA_LOG,
        **extra,
        **(options or {}),
    }


class CheckedProducer:
    """A producer whose `flush` raises if anything sent since the last flush was not delivered.

    Idempotence is on so librdkafka's retries never duplicate or reorder a partition. The
    constructor creates the client only: librdkafka connects in the background, lazily.
    """

    def __init__(self, settings: KafkaSettings, options: Mapping[str, Any] | None = None) -> None:
        self._producer = Producer(producer_config(settings, options))
        self._lock = threading.Lock()
        self._failures: list[str] = []
        self.delivered = 0

    def _on_delivery(self, error: KafkaError | None, _: Message) -> None:
        if error is None:
            self.delivered += 1
        else:
            with self._lock:
                self._failures.append(str(error))

    def send(self, record: OutRecord) -> None:
        produce(self._producer, record, self._on_delivery)

    def send_all(self, records: Iterable[OutRecord]) -> None:
        for record in records:
            self.send(record)
        self._producer.poll(0)

    def send_tracked(self, records: Iterable[OutRecord]) -> BatchAcks:
        """Send `records` and follow their acknowledgements apart from anything else sent, so a
        caller can wait for one batch while later ones are still in flight."""
        acks = BatchAcks(self._producer)
        for record in records:
            produce(self._producer, record, acks.on_delivery)
            acks.remaining += 1
        self._producer.poll(0)
        return acks

    def flush(self, timeout: float = 60) -> None:
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} records not delivered within {timeout}s")
        if failures:
            raise DeliveryError(f"{len(failures)} delivery failures, first: {failures[0]}")

    def close(self, timeout: float = 30) -> None:
        self.flush(timeout)


class BatchAcks:
    """The acknowledgements of one batch (`CheckedProducer.send_tracked`). Delivery reports are
    served by the producer's `poll`, in the thread that calls `done` or `wait`."""

    __slots__ = ("_producer", "failures", "remaining")

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self.remaining = 0
        self.failures: list[str] = []

    def on_delivery(self, error: KafkaError | None, _: Message) -> None:
        self.remaining -= 1
        if error is not None:
            self.failures.append(str(error))

    @property
    def done(self) -> bool:
        """Every record acknowledged or refused (serving the reports that are in)."""
        if self.remaining:
            self._producer.poll(0)
        return not self.remaining

    def wait(self, timeout: float = 60) -> None:
        """Returns once every record is acknowledged; raises `DeliveryError` if one was not."""
        deadline = time.monotonic() + timeout
        while self.remaining and (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(left, 0.1))
        failures = list(self.failures)
        if self.remaining:
            failures.append(f"{self.remaining} records not delivered within {timeout}s")
        if failures:
            raise DeliveryError(f"{len(failures)} delivery failures, first: {failures[0]}")
