"""CheckedProducer.send_tracked on the real broker: each batch's acknowledgements are followed
apart from the others, and a record the broker refuses fails its own batch's wait."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from clickstream_common.kafka import CheckedProducer
from clickstream_common.kafka.errors import DeliveryError
from clickstream_common.records import OutRecord
from clickstream_common.settings import KafkaSettings

from tests.support.brokers import Brokers
from tests.support.eventually import eventually
from tests.support.kafka_clients import consumer

pytestmark = pytest.mark.integration


def test_batches_are_acknowledged_one_by_one_and_all_land(
    brokers: Brokers, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2, prefix="tp")
    producer = CheckedProducer(KafkaSettings(brokers.kafka, {}))
    batches = [
        producer.send_tracked([OutRecord(topic, b"k%d" % i, b"%d-%d" % (n, i)) for i in range(100)])
        for n in range(3)
    ]
    batches[0].wait(30)
    assert batches[0].done and batches[0].remaining == 0
    eventually(lambda: all(b.done for b in batches), timeout=30, message="acknowledgements")
    for batch in batches:
        batch.wait(30)  # all acknowledged: returns at once, raises nothing
    values: set[bytes] = set()
    with consumer(brokers.kafka, f"{topic}.check", **{"auto.offset.reset": "earliest"}) as c:
        c.subscribe([topic])

        def read() -> bool:
            values.update(m.value() for m in c.consume(500, 0.5) if m.error() is None)
            return len(values) == 300

        eventually(read, timeout=60, interval=0, message=lambda: f"read {len(values)} of 300")
    producer.close()


def test_a_record_the_broker_refuses_fails_its_batch_and_only_its_batch(
    brokers: Brokers, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2, prefix="tp", config={"max.message.bytes": "1000"})
    producer = CheckedProducer(KafkaSettings(brokers.kafka, {}), {"compression.type": "none"})
    # apart (a broker refuses a whole produce batch of one partition)
    fine = producer.send_tracked([OutRecord(topic, None, b"small", partition=0)])
    refused = producer.send_tracked([OutRecord(topic, None, b"x" * 5000, partition=1)])
    fine.wait(30)
    with pytest.raises(DeliveryError, match=r"(?i)too large"):
        refused.wait(30)
    producer.flush(30)
