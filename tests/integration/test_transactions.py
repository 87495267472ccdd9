"""The transactional adapters on the real broker: outputs and offsets (with their note) commit
together, a failed transaction is aborted and invisible to read_committed readers, a second
producer with the same transactional.id fences the first, and offsets from a member the group no
longer knows are refused at once, the consumer going back to its commits."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

import pytest
from clickstream_common.delivery import ExactlyOnceCommitter
from clickstream_common.kafka import (
    BatchConsumer,
    GroupFenced,
    KafkaFatalError,
    TransactionalProducer,
    TransactionError,
)
from clickstream_common.records import OutRecord, Position
from clickstream_common.settings import KafkaSettings
from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

from tests.support.brokers import Brokers
from tests.support.eventually import GaveUpWaiting, eventually
from tests.support.kafka_clients import admin
from tests.support.oracle import read_topic

pytestmark = pytest.mark.integration


def poll_values(consumer: BatchConsumer, count: int) -> list[bytes | None]:
    """The values of the next `count` records the consumer reads, or fewer if none come."""
    values: list[bytes | None] = []

    def enough() -> bool:
        values.extend(r.value for r in consumer.poll_batch(10, 0.5))
        return len(values) >= count

    with contextlib.suppress(GaveUpWaiting):
        eventually(enough, timeout=60, interval=0)
    return values


@pytest.fixture
def setup(
    brokers: Brokers,
    topic_name: Callable[[str], str],
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
):
    run = topic_name("tx")
    kafka = KafkaSettings(brokers.kafka, {})
    source = new_topic(1, name=f"{run}.in")
    out = new_topic(1, name=f"{run}.out")
    plain = kafka_producer()
    for index in range(3):
        plain.produce(source, value=b"%d" % index)
    assert plain.flush(30) == 0
    consumer = BatchConsumer(kafka, f"{run}.group")
    consumer.subscribe([source])
    assert len(poll_values(consumer, 3)) >= 3, "consumer got no records"
    yield kafka, run, source, out, consumer
    consumer.close()


def test_outputs_and_offsets_with_their_note_commit_together(setup, brokers: Brokers) -> None:
    kafka, run, source, out, consumer = setup
    producer = TransactionalProducer(kafka, f"{run}.tx")
    producer.start()
    committer = ExactlyOnceCommitter(producer, consumer)
    committer.commit_batch([OutRecord(out, b"k", b"v")], {(source, 0): Position(1, "v1:3:")})
    assert not producer.in_transaction
    assert committer.resume([(source, 0)]) == {(source, 0): Position(1, "v1:3:")}
    assert [r.value for r in read_topic(brokers.kafka, out)] == [b"v"]
    producer.close()


def test_a_failing_transaction_is_aborted_retried_and_never_visible(
    setup, brokers: Brokers, new_topic: Callable[..., str]
) -> None:
    kafka, run, source, out, consumer = setup
    small = new_topic(1, name=f"{run}.small")
    limit = ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", out, incremental_configs=[limit])
    client = admin(brokers.kafka)
    for future in client.incremental_alter_configs([resource]).values():
        future.result()
    producer = TransactionalProducer(kafka, f"{run}.tx", attempts=2)
    producer.start()
    committer = ExactlyOnceCommitter(producer, consumer)
    with pytest.raises(TransactionError, match="aborted 2 times"):
        committer.commit_batch(
            # The small one is written, the big one refused (random bytes: lz4 cannot shrink
            # them under the topic's limit), so the whole transaction is aborted, twice.
            [OutRecord(small, b"small", b"x"), OutRecord(out, b"big", os.urandom(5000))],
            {(source, 0): Position(3)},
        )
    assert not producer.in_transaction
    assert committer.resume([(source, 0)]) == {}  # no offset committed either
    # The producer carries on: the next transaction commits.
    committer.commit_batch([OutRecord(out, b"after", b"y")], {(source, 0): Position(3)})
    assert committer.resume([(source, 0)]) == {(source, 0): Position(3)}
    assert [r.key for r in read_topic(brokers.kafka, out)] == [b"after"]
    assert read_topic(brokers.kafka, small) == []
    uncommitted = read_topic(brokers.kafka, small, isolation_level="read_uncommitted")
    assert [r.key for r in uncommitted] == [b"small", b"small"]
    producer.close()


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(setup) -> None:
    kafka, run, _, out, consumer = setup
    first = TransactionalProducer(kafka, f"{run}.tx")
    first.start()
    ExactlyOnceCommitter(first, consumer).commit_batch([OutRecord(out, None, b"1")], {})
    second = TransactionalProducer(kafka, f"{run}.tx")
    second.start()
    with pytest.raises(KafkaFatalError):
        ExactlyOnceCommitter(first, consumer).commit_batch([OutRecord(out, None, b"2")], {})
    ExactlyOnceCommitter(second, consumer).commit_batch([OutRecord(out, None, b"3")], {})
    second.close()
    first.close()


def test_offsets_of_a_member_the_group_moved_on_from_are_refused_without_retrying(
    setup, brokers: Brokers
) -> None:
    kafka, run, source, out, consumer = setup
    stale = consumer.consumer_group_metadata()
    consumer.close()  # leaves the group: the metadata now names a member it does not have
    producer = TransactionalProducer(kafka, f"{run}.tx")
    producer.start()
    with pytest.raises(GroupFenced, match=r"UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION"):
        producer.transact([OutRecord(out, b"k", b"v")], {(source, 0): Position(3)}, stale)
    assert not producer.in_transaction
    assert read_topic(brokers.kafka, out) == []
    producer.transact([OutRecord(out, b"k", b"after")], {}, None)
    assert [r.value for r in read_topic(brokers.kafka, out)] == [b"after"]
    producer.close()


def test_rewind_sends_the_consumer_back_to_its_commit(setup) -> None:
    _, _, source, _, consumer = setup
    consumer.commit({(source, 0): 1})
    assert consumer.rewind() == [(source, 0)]
    again = poll_values(consumer, 2)
    assert len(again) >= 2, f"read again only {again}"
    assert again == [b"1", b"2"]
