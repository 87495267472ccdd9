"""The transactional adapters on the real broker: outputs and offsets (with their note) commit
together, a failed transaction is aborted and invisible to read_committed readers, a second
producer with the same transactional.id fences the first, and offsets from a member the group no
longer knows are refused at once, the consumer going back to its commits."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from clickstream_common.delivery import ExactlyOnceCommitter
from clickstream_common.kafka import (
    BatchConsumer,
    GroupFenced,
    KafkaFatalError,
    TopicSpec,
    TransactionalProducer,
    TransactionError,
    ensure_topics,
)
from clickstream_common.records import OutRecord, Position
from clickstream_common.settings import KafkaSettings
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from tests.support.brokers import Brokers
from tests.support.oracle import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(brokers: Brokers):
    run = f"tx-{uuid.uuid4().hex[:10]}"
    kafka = KafkaSettings(brokers.kafka, {})
    source, out = f"{run}.in", f"{run}.out"
    ensure_topics(kafka, [TopicSpec(source, 1), TopicSpec(out, 1)])
    plain = Producer({"bootstrap.servers": brokers.kafka})
    for index in range(3):
        plain.produce(source, value=b"%d" % index)
    assert plain.flush(30) == 0
    consumer = BatchConsumer(kafka, f"{run}.group")
    consumer.subscribe([source])
    deadline = time.monotonic() + 60
    records = []
    while len(records) < 3:
        assert time.monotonic() < deadline, "consumer got no records"
        records += consumer.poll_batch(10, 0.5)
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
    setup, brokers: Brokers
) -> None:
    kafka, run, source, out, consumer = setup
    small = f"{run}.small"
    ensure_topics(kafka, [TopicSpec(small, 1)])
    admin = AdminClient({"bootstrap.servers": brokers.kafka})
    limit = ConfigEntry("max.message.bytes", "1000", incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("topic", out, incremental_configs=[limit])
    for future in admin.incremental_alter_configs([resource]).values():
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
    deadline = time.monotonic() + 60
    again: list[bytes | None] = []
    while len(again) < 2:
        assert time.monotonic() < deadline, f"read again only {again}"
        again += [r.value for r in consumer.poll_batch(10, 0.5)]
    assert again == [b"1", b"2"]
