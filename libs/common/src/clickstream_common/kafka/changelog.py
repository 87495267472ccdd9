"""Reading one partition of a changelog topic from its start to its end, outside any group: how a
stateful operator restores a partition's state before it reads the partition's input.

Read committed, so an aborted transaction's state changes are never restored; the end is the
partition's high watermark when the read starts (control records and aborted records count
towards the position, so the reader gets there either way).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import KafkaFatalError
from clickstream_common.settings import KafkaSettings

# Without progress for this long (the broker away, a transaction left open by a dead instance
# past its timeout), the restore gives up and the service stops rather than serve partial state.
STALL_LIMIT_S = 180.0


class ChangelogReader:
    """The constructor creates the client only; each `read` assigns, reads and unassigns."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._topic = topic
        self._consumer = Consumer(
            {
                **settings.client_config(),
                "group.id": "unused-changelog-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
                "logger": LIBRDKAFKA_LOG,
            }
        )

    @property
    def topic(self) -> str:
        return self._topic

    def read(self, partition: int, timeout: float = 30) -> Iterator[tuple[bytes, bytes | None]]:
        """(key, value) of every record of the partition, in log order; None for a tombstone."""
        low, high = self._consumer.get_watermark_offsets(
            TopicPartition(self._topic, partition), timeout=timeout
        )
        if high <= low:
            return
        self._consumer.assign([TopicPartition(self._topic, partition, OFFSET_BEGINNING)])
        try:
            last_progress = time.monotonic()
            position = low
            while position < high:
                # A short wait: `consume` returns early only with a full batch, and a partition's
                # tail is usually smaller than one.
                messages = self._consumer.consume(num_messages=10_000, timeout=0.05)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaFatalError(f"changelog {self._topic}: {error}")
                    key = message.key()
                    if key is not None:
                        yield key, message.value()
                [tp] = self._consumer.position([TopicPartition(self._topic, partition)])
                if tp.offset > position:
                    position, last_progress = tp.offset, time.monotonic()
                elif time.monotonic() - last_progress > STALL_LIMIT_S:
                    raise KafkaFatalError(
                        f"changelog {self._topic}[{partition}] restore stalled at offset "
                        f"{position} of {high} for {STALL_LIMIT_S:g} s"
                    )
        finally:
            self._consumer.unassign()

    def close(self) -> None:
        self._consumer.close()
