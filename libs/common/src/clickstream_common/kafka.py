"""confluent-kafka adapters: batch consume, checked produce, topic admin.

The services see `Record` / `OutRecord` only. Offsets are committed explicitly, and only by the
caller once the work they cover is done; delivery failures are raised, never swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from clickstream_common.records import OutRecord, PartitionKey, Record
from clickstream_common.settings import KafkaSettings

_librdkafka_log = logging.getLogger("librdkafka")


_LEADER_MOVING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
    }
)


class KafkaFatalError(RuntimeError):
    """The client reported an error it cannot recover from; the service must stop."""


class DeliveryError(RuntimeError):
    """At least one produced record was not acknowledged; its input must not be committed."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 4
    compact: bool = False


def _to_record(message: Message) -> Record:
    topic = message.topic()
    partition = message.partition()
    offset = message.offset()
    assert topic is not None and partition is not None and offset is not None
    headers: Any = message.headers()
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        timestamp_ms=message.timestamp()[1],
        headers=tuple((name, value or b"") for name, value in headers) if headers else (),
    )


def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec], timeout: float = 30) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AdminClient({**settings.client_config(), "logger": _librdkafka_log})  # type: ignore[dict-item]
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=-1,
            config={"cleanup.policy": "compact"} if spec.compact else {},
        )
        for spec in specs
        if spec.name not in existing
    ]
    if not wanted:
        return
    for topic, future in admin.create_topics(wanted, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise KafkaFatalError(f"cannot create topic {topic}: {exc}") from exc


class BatchConsumer:
    """A consumer in a group, read in batches, committed explicitly.

    Auto-commit is off: the only offsets that reach Kafka are the ones the caller hands to
    `commit`, after the outputs for them are acknowledged.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        *,
        on_revoke: Callable[[list[PartitionKey]], None] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        config: dict[str, Any] = {
            **settings.client_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "logger": _librdkafka_log,
            **(options or {}),
        }
        self._consumer = Consumer(config)
        self._on_revoke = on_revoke
        self._consumer.subscribe(list(topics), on_revoke=self._revoked, on_lost=self._revoked)

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        if self._on_revoke is not None and partitions:
            self._on_revoke([(tp.topic, tp.partition) for tp in partitions])

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        return _records(messages)

    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        """Commit synchronously: `next_offsets` maps a partition to the next offset to read."""
        if not next_offsets:
            return
        self._consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
            asynchronous=False,
        )

    def committed(
        self, partitions: Iterable[PartitionKey], timeout: float = 10
    ) -> dict[PartitionKey, int]:
        result = self._consumer.committed(
            [TopicPartition(t, p) for t, p in partitions], timeout=timeout
        )
        return {(tp.topic, tp.partition): tp.offset for tp in result}

    def close(self) -> None:
        self._consumer.close()


def _records(messages: list[Message]) -> list[Record]:
    records: list[Record] = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(_to_record(message))
        elif error.code() == KafkaError._PARTITION_EOF:
            continue
        elif error.fatal():
            raise KafkaFatalError(str(error))
        else:
            _librdkafka_log.warning("consumer error: %s", error)
    return records


class TableReader:
    """Reads a whole topic from the start, outside any group: every replica gets all of it."""

    def __init__(self, settings: KafkaSettings, topic: str, timeout: float = 30) -> None:
        self._consumer = Consumer(
            {
                **settings.client_config(),
                "group.id": "unused-table-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "logger": _librdkafka_log,
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=timeout)
        topic_meta = metadata.topics.get(topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            raise KafkaFatalError(f"topic {topic!r} not found")
        self.partitions = sorted(topic_meta.partitions)
        self._topic = topic
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in self.partitions])

    def watermarks(self, timeout: float = 30) -> dict[int, tuple[int, int]]:
        """(low, high) of each partition; reading up to `high` as seen at start is 'caught up'.

        A topic created a moment ago may have no leader yet; that passes, so it is retried.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return {
                    p: self._consumer.get_watermark_offsets(
                        TopicPartition(self._topic, p), timeout=timeout
                    )
                    for p in self.partitions
                }
            except KafkaException as exc:
                if exc.args[0].code() not in _LEADER_MOVING or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def positions(self) -> dict[int, int]:
        """The next offset to read per partition; it moves past control records too."""
        tps = self._consumer.position([TopicPartition(self._topic, p) for p in self.partitions])
        return {tp.partition: tp.offset for tp in tps}

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return _records(self._consumer.consume(num_messages=max_records, timeout=timeout))

    def close(self) -> None:
        self._consumer.close()


class CheckedProducer:
    """A producer whose `flush` raises if anything sent since the last flush was not delivered.

    Idempotence is on so librdkafka's retries never duplicate or reorder a partition.
    """

    def __init__(self, settings: KafkaSettings, options: Mapping[str, Any] | None = None) -> None:
        self._producer = Producer(
            {
                **settings.client_config(),
                "enable.idempotence": True,
                "linger.ms": 5,
                "compression.type": "lz4",
                "logger": _librdkafka_log,
                **(options or {}),
            }
        )
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
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers) if record.headers else None,
                    on_delivery=self._on_delivery,
                )
                return
            except BufferError:
                # The local queue is full: serve delivery reports to make room, then retry.
                self._producer.poll(0.1)

    def send_all(self, records: Iterable[OutRecord]) -> None:
        for record in records:
            self.send(record)
        self._producer.poll(0)

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
