"""Reading a whole topic as a table, outside any consumer group."""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from clickstream_common.kafka.client_log import LIBRDKAFKA_LOG
from clickstream_common.kafka.errors import LEADER_MOVING, KafkaFatalError
from clickstream_common.kafka.messages import to_records
from clickstream_common.records import Record
from clickstream_common.settings import KafkaSettings


class TableReader:
    """Reads a whole topic from the start, outside any group: every replica gets all of it.

    The constructor only creates the client (librdkafka connects in the background, lazily);
    `start` looks the topic up and assigns all of its partitions.
    """

    def __init__(self, settings: KafkaSettings, topic: str, tail: int | None = None) -> None:
        """`tail`: read only each partition's last `tail` records and what follows (a live
        feed), not the whole topic."""
        self._bootstrap_servers = settings.bootstrap_servers
        self._consumer = Consumer(
            {
                **settings.client_config(),
                "group.id": "unused-table-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # Prefetch at most 16 MB, not librdkafka's 64 MB: the reader is held back by
                # the table's decoding anyway, and a bigger queue only adds to the peak memory.
                "queued.max.messages.kbytes": 16384,
                "logger": LIBRDKAFKA_LOG,
            }
        )
        self._topic = topic
        self._tail = tail
        self.partitions: list[int] = []

    def start(self, timeout: float = 30) -> None:
        """Assign every partition of the topic from its beginning; `KafkaFatalError` if Kafka
        cannot be reached or the topic does not exist."""
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=timeout)
        except KafkaException as exc:
            raise KafkaFatalError(
                f"cannot reach Kafka at {self._bootstrap_servers}: {exc.args[0]}"
            ) from None
        topic_meta = metadata.topics.get(self._topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            raise KafkaFatalError(f"topic {self._topic!r} not found")
        self.partitions = sorted(topic_meta.partitions)
        if self._tail is None:
            starts = dict.fromkeys(self.partitions, OFFSET_BEGINNING)
        else:
            tail = self._tail
            starts = {p: max(low, high - tail) for p, (low, high) in self.watermarks().items()}
        self._consumer.assign([TopicPartition(self._topic, p, o) for p, o in starts.items()])

    def watermarks(self, timeout: float = 30) -> dict[int, tuple[int, int]]:
        """(low, high) of each partition; reading up to `high` as seen at start is 'caught up'.

        A topic created a moment ago may have no leader yet; that passes, so it is retried.
        """
        retrying = Retrying(
            retry=retry_if_exception(_leader_moving),
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.2),
            reraise=True,
        )
        return retrying(self._watermarks, timeout)

    def _watermarks(self, timeout: float) -> dict[int, tuple[int, int]]:
        return {
            p: self._consumer.get_watermark_offsets(TopicPartition(self._topic, p), timeout=timeout)
            for p in self.partitions
        }

    def positions(self) -> dict[int, int]:
        """The next offset to read per partition; it moves past control records too."""
        tps = self._consumer.position([TopicPartition(self._topic, p) for p in self.partitions])
        return {tp.partition: tp.offset for tp in tps}

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return to_records(self._consumer.consume(num_messages=max_records, timeout=timeout))

    def close(self) -> None:
        self._consumer.close()


def _leader_moving(exc: BaseException) -> bool:
    return isinstance(exc, KafkaException) and exc.args[0].code() in LEADER_MOVING
