"""BatchConsumer.commit_async on the real broker: offsets handed over without waiting are
committed by the time the consumer closes, and before a rebalance takes their partitions away."""

from __future__ import annotations

import time
import uuid

import pytest
from clickstream_common.kafka import BatchConsumer, TopicSpec, ensure_topics
from clickstream_common.records import PartitionKey
from clickstream_common.settings import KafkaSettings
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.groups import committed

pytestmark = pytest.mark.integration


def _topic(brokers: Brokers, partitions: int) -> tuple[KafkaSettings, str]:
    kafka = KafkaSettings(brokers.kafka, {})
    topic = f"ac-{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka, [TopicSpec(topic, partitions)])
    producer = Producer({"bootstrap.servers": brokers.kafka})
    for partition in range(partitions):
        for index in range(5):
            producer.produce(topic, value=b"%d" % index, partition=partition)
    assert producer.flush(30) == 0
    return kafka, topic


def _read_all(consumer: BatchConsumer, count: int) -> None:
    deadline = time.monotonic() + 60
    seen = 0
    while seen < count:
        assert time.monotonic() < deadline, "consumer got no records"
        seen += len(consumer.poll_batch(100, 0.5))


def test_offsets_committed_asynchronously_are_durable_once_the_consumer_closes(
    brokers: Brokers,
) -> None:
    kafka, topic = _topic(brokers, 1)
    group = f"{topic}.group"
    consumer = BatchConsumer(kafka, group)
    consumer.subscribe([topic])
    _read_all(consumer, 5)
    consumer.commit_async({(topic, 0): 3})
    consumer.commit_async({(topic, 0): 5})  # no poll in between: nothing confirmed yet
    consumer.close()
    assert committed(brokers.kafka, group, topic, [0]) == {0: 5}


def test_a_revoked_partition_is_committed_up_to_what_was_handed_over_before_it_goes(
    brokers: Brokers,
) -> None:
    kafka, topic = _topic(brokers, 2)
    group = f"{topic}.group"
    handed: dict[PartitionKey, int] = {}
    revoked: list[PartitionKey] = []

    class HandOver:
        def on_assign(self, partitions: list[PartitionKey]) -> None:
            pass

        def on_revoke(self, partitions: list[PartitionKey]) -> None:
            # As the enricher does: what it finished is handed over as the partitions go.
            revoked.extend(partitions)
            first.commit_async({p: handed[p] for p in partitions if p in handed})

    first = BatchConsumer(kafka, group)
    first.subscribe([topic], HandOver())
    _read_all(first, 10)
    handed.update({(topic, 0): 4, (topic, 1): 4})
    second = BatchConsumer(kafka, group)
    second.subscribe([topic])
    deadline = time.monotonic() + 60
    while not revoked:
        assert time.monotonic() < deadline, "the second member never got a partition"
        first.poll_batch(100, 0.2)
        second.poll_batch(100, 0.2)
    # Committed synchronously inside the revoke, so visible the moment it returned.
    (gone,) = revoked
    assert committed(brokers.kafka, group, topic, [gone[1]]) == {gone[1]: 4}
    second.close()
    first.close()
