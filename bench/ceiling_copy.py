"""The enricher's ceiling: a bare confluent-kafka consume-and-produce loop over the same topic.

It does what the enricher does around its query and nothing else: consume a batch (1,000, the
enricher's BATCH_SIZE) with the same consumer settings, produce every value unchanged (no
parsing) with the same producer settings, wait for Kafka's acknowledgement (flush) and commit the
batch's offsets synchronously. It copies every click, while the enricher writes only the ~10%
that are PLATINUM VipActions.

    python -m bench.ceiling_copy --bootstrap 127.0.0.1:9092 --topic T --output O --group G

Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )
    consumer.subscribe([args.topic])
    produce = producer.produce
    output = args.output
    try:
        while not stopping:
            messages = consumer.consume(args.batch, 0.5)
            if not messages:
                continue
            offsets: dict[int, int] = {}
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(str(error))
                    continue
                while True:
                    try:
                        produce(output, message.value(), message.key())
                        break
                    except BufferError:
                        producer.poll(0.1)
                offsets[message.partition()] = message.offset() + 1
            if producer.flush(60):
                raise RuntimeError("records not acknowledged within 60s")
            consumer.commit(
                offsets=[TopicPartition(args.topic, p, o) for p, o in offsets.items()],
                asynchronous=False,
            )
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
