"""BatchConsumer.commit_async on the real broker: offsets handed over without waiting are sent
at most every KAFKA_COMMIT_INTERVAL_MS, and committed by the time the consumer closes and before a
rebalance takes their partitions away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from clickstream_common.kafka import BatchConsumer
from clickstream_common.records import PartitionKey
from clickstream_common.settings import KafkaSettings
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.eventually import eventually
from tests.support.groups import committed

pytestmark = pytest.mark.integration


@pytest.fixture
def filled_topic(
    brokers: Brokers, new_topic: Callable[..., str], kafka_producer: Callable[..., Producer]
) -> Callable[[int], tuple[KafkaSettings, str]]:
    """`filled_topic(partitions)`: a fresh topic with five records in each partition."""

    def make(partitions: int) -> tuple[KafkaSettings, str]:
        topic = new_topic(partitions, prefix="ac")
        producer = kafka_producer()
        for partition in range(partitions):
            for index in range(5):
                producer.produce(topic, value=b"%d" % index, partition=partition)
        assert producer.flush(30) == 0
        return KafkaSettings(brokers.kafka, {}), topic

    return make


def _read_all(consumer: BatchConsumer, count: int) -> None:
    seen = 0

    def read_enough() -> bool:
        nonlocal seen
        seen += len(consumer.poll_batch(100, 0.5))
        return seen >= count

    eventually(read_enough, timeout=60, interval=0, message="consumer got no records")


def test_offsets_committed_asynchronously_are_durable_once_the_consumer_closes(
    brokers: Brokers, filled_topic: Callable[[int], tuple[KafkaSettings, str]]
) -> None:
    kafka, topic = filled_topic(1)
    group = f"{topic}.group"
    consumer = BatchConsumer(kafka, group)
    consumer.subscribe([topic])
    _read_all(consumer, 5)
    consumer.commit_async({(topic, 0): 3})
    consumer.commit_async({(topic, 0): 5})  # no poll in between: nothing confirmed yet
    consumer.close()
    assert committed(brokers.kafka, group, topic, [0]) == {0: 5}


def test_a_revoked_partition_is_committed_up_to_what_was_handed_over_before_it_goes(
    brokers: Brokers, filled_topic: Callable[[int], tuple[KafkaSettings, str]]
) -> None:
    kafka, topic = filled_topic(2)
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

    def rebalanced() -> bool:
        first.poll_batch(100, 0.2)
        second.poll_batch(100, 0.2)
        return bool(revoked)

    eventually(
        rebalanced, timeout=60, interval=0, message="the second member never got a partition"
    )
    # Committed synchronously inside the revoke, so visible the moment it returned.
    (gone,) = revoked
    assert committed(brokers.kafka, group, topic, [gone[1]]) == {gone[1]: 4}
    second.close()
    first.close()


def _having_read_all(
    filled_topic: Callable[[int], tuple[KafkaSettings, str]], *, commit_interval_ms: int
) -> tuple[BatchConsumer, str, str]:
    """A consumer with this commit interval that has read a one-partition topic's five records:
    (consumer, topic, group)."""
    kafka, topic = filled_topic(1)
    group = f"{topic}.group"
    consumer = BatchConsumer(replace(kafka, commit_interval_ms=commit_interval_ms), group)
    consumer.subscribe([topic])
    _read_all(consumer, 5)
    return consumer, topic, group


def test_offsets_handed_over_within_the_interval_are_sent_together_with_the_next_commit(
    brokers: Brokers, filled_topic: Callable[[int], tuple[KafkaSettings, str]]
) -> None:
    consumer, topic, group = _having_read_all(filled_topic, commit_interval_ms=600_000)
    consumer.commit_async({(topic, 0): 3})  # the first is due at once
    consumer.commit_async({(topic, 0): 5})  # within the interval: held back

    def first_confirmed() -> bool:
        consumer.poll_batch(100, 0.1)
        return consumer.confirmed_offsets().get((topic, 0)) == 3

    eventually(first_confirmed, timeout=60, interval=0, message="the first commit never came back")
    for _ in range(5):
        consumer.poll_batch(100, 0.1)
    assert committed(brokers.kafka, group, topic, [0]) == {0: 3}
    consumer.close()  # what was held back is committed on the way out
    assert committed(brokers.kafka, group, topic, [0]) == {0: 5}


def test_a_quiet_consumer_still_sends_what_it_holds_once_the_interval_is_over(
    brokers: Brokers, filled_topic: Callable[[int], tuple[KafkaSettings, str]]
) -> None:
    consumer, topic, group = _having_read_all(filled_topic, commit_interval_ms=200)
    consumer.commit_async({(topic, 0): 2})
    consumer.commit_async({(topic, 0): 4})  # no more records and no more commits after this

    def sent() -> bool:
        consumer.poll_batch(100, 5.0)  # returns when the held commit falls due
        return committed(brokers.kafka, group, topic, [0]) == {0: 4}

    eventually(sent, timeout=60, interval=0, message="the held offset was never sent")
    consumer.close()
