"""The bridge's relay on real brokers: offsets handed over asynchronously only ever cover confirmed
messages, are durable once the consumer closes, and returned messages are retried, then
dead-lettered, before their offsets are committed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import orjson
import pika
import pytest
from clickstream_common.kafka import BatchConsumer, CheckedProducer
from clickstream_common.lifecycle import Shutdown
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit import RabbitPublisher, Topology
from clickstream_common.settings import KafkaSettings
from clickstream_rabbit_bridge.relay import Interrupted, Relay
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.collect import queue_depth
from tests.support.eventually import eventually
from tests.support.groups import committed, end_offsets
from tests.support.oracle import read_topic

pytestmark = pytest.mark.integration

ACTIONS = ("checkout", "view")


@pytest.fixture
def topology(brokers: Brokers) -> Iterator[Topology]:
    """Only checkouts are routable: every other action is returned by the broker."""
    name = f"relay-{uuid.uuid4().hex[:10]}"
    yield Topology(exchange=name, queue=name, binding_key="vip.checkout", queue_type="classic")
    connection = pika.BlockingConnection(pika.URLParameters(brokers.rabbitmq))
    try:
        channel = connection.channel()
        channel.queue_delete(name)
        channel.exchange_delete(name)
    finally:
        connection.close()


VipTopic = Callable[..., tuple[KafkaSettings, str]]


@pytest.fixture
def vip_topic(
    brokers: Brokers, new_topic: Callable[..., str], kafka_producer: Callable[..., Producer]
) -> VipTopic:
    """`vip_topic(count, actions=ACTIONS, partitions=2)`: a fresh VipAction topic (and its DLQ)
    holding `count` records, their actions taken in turn from `actions`."""

    def make(
        count: int, actions: tuple[str, ...] = ACTIONS, partitions: int = 2
    ) -> tuple[KafkaSettings, str]:
        topic = new_topic(partitions, prefix="relay")
        new_topic(1, name=f"{topic}.dlq")
        producer = kafka_producer()
        for index in range(count):
            value = {"event_id": f"e{index}", "action": actions[index % len(actions)]}
            producer.produce(topic, key=b"%d" % index, value=orjson.dumps(value))
        assert producer.flush(30) == 0
        return KafkaSettings(brokers.kafka, {}), topic

    return make


def _relay(
    brokers: Brokers, kafka: KafkaSettings, topic: str, topology: Topology, shutdown: Shutdown
) -> tuple[Relay, BatchConsumer, RabbitPublisher, CheckedProducer]:
    consumer = BatchConsumer(kafka, f"{topic}.group")
    consumer.subscribe([topic])
    publisher = RabbitPublisher(brokers.rabbitmq, topology)
    publisher.start()
    dead_letters = CheckedProducer(kafka)
    relay = Relay(
        source=consumer,
        publisher=publisher,
        dead_letters=dead_letters,
        dead_letter_topic=f"{topic}.dlq",
        metrics=Metrics(prefix="test"),
        shutdown=shutdown,
        batch_size=7,
    )
    return relay, consumer, publisher, dead_letters


def test_every_record_is_confirmed_or_dead_lettered_and_committed_on_close(
    brokers: Brokers, topology: Topology, vip_topic: VipTopic
) -> None:
    count = 40
    kafka, topic = vip_topic(count)
    relay, consumer, publisher, dead_letters = _relay(brokers, kafka, topic, topology, Shutdown())
    relayed = 0

    def all_relayed() -> bool:
        nonlocal relayed
        relayed += relay.step(0.5)
        return relayed >= count

    try:
        eventually(
            all_relayed,
            timeout=120,
            interval=0,
            message=lambda: f"only {relayed} of {count} relayed",
        )
        relay.settle_all()
    finally:
        consumer.close()  # commits synchronously what was handed over asynchronously
        publisher.close()
        dead_letters.close()
    ends = end_offsets(brokers.kafka, topic)
    assert committed(brokers.kafka, f"{topic}.group", topic, [0, 1]) == ends
    assert queue_depth(brokers.rabbitmq, topology.queue) == count // 2
    dead = read_topic(brokers.kafka, f"{topic}.dlq")
    assert len(dead) == count // 2


def test_batches_confirmed_after_a_returned_one_are_not_committed_before_it(
    brokers: Brokers, topology: Topology, vip_topic: VipTopic
) -> None:
    """The first batch holds a message the broker returns; the ones read after it are confirmed
    while it waits for its retry, yet at shutdown none of their offsets may be committed."""
    kafka, topic = vip_topic(1 + 60, ("view",) + ("checkout",) * 60, partitions=1)
    shutdown = Shutdown()
    relay, consumer, publisher, dead_letters = _relay(brokers, kafka, topic, topology, shutdown)
    shutdown.request()  # the retry's wait sees it: the first batch is given up, unconfirmed

    def step_until_interrupted() -> bool:
        relay.step(0.5)
        return False  # only Interrupted ends it

    try:
        with pytest.raises(Interrupted):
            eventually(
                step_until_interrupted,
                timeout=60,
                interval=0,
                message="the relay was never interrupted",
            )
    finally:
        consumer.close()
        publisher.close()
        dead_letters.close()
    assert (
        queue_depth(brokers.rabbitmq, topology.queue) > 0
    )  # later batches were in flight, confirmed
    assert committed(brokers.kafka, f"{topic}.group", topic, [0]) == {0: -1001}
