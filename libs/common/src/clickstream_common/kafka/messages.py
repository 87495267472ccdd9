"""Between confluent-kafka's messages and partitions and the broker-neutral `Record` and offsets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, TopicPartition

from clickstream_common.kafka.errors import KafkaFatalError
from clickstream_common.logging import get_logger
from clickstream_common.records import PartitionKey, Record

log = get_logger(__name__)

_new_tuple = tuple.__new__


def to_record(message: Message) -> Record:
    topic = message.topic()
    partition = message.partition()
    offset = message.offset()
    assert topic is not None and partition is not None and offset is not None
    headers: Any = message.headers()
    # Fields in Record's order. tuple.__new__ skips the NamedTuple's Python-level __new__, which
    # cost a microsecond a record: a second of every million users restored.
    fields = (
        topic,
        partition,
        offset,
        message.key(),
        message.value(),
        message.timestamp()[1],
        tuple((name, value or b"") for name, value in headers) if headers else (),
    )
    return _new_tuple(Record, fields)


def to_records(messages: list[Message]) -> list[Record]:
    """The records among `messages`; a fatal error is raised, a passing one logged and skipped."""
    records: list[Record] = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(to_record(message))
        elif error.code() == KafkaError._PARTITION_EOF:
            continue
        elif error.fatal():
            raise KafkaFatalError(str(error))
        else:
            log.warning("consumer error", error=str(error))
    return records


def to_partitions(next_offsets: Mapping[PartitionKey, int]) -> list[TopicPartition]:
    return [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
