"""rabbit-bridge: VipActions from Kafka to RabbitMQ, a Kafka offset committed only once every
message up to it is confirmed by RabbitMQ and not returned.

Configured only by environment variables: README.md § The services lists them and their defaults.
"""

from __future__ import annotations

import sys

from clickstream_common.avro import value_format_from
from clickstream_common.kafka import BatchConsumer, CheckedProducer, TopicSpec
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit import RabbitPublisher
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_rabbit_bridge.relay import Relay
from clickstream_rabbit_bridge.service import BridgeService
from clickstream_rabbit_bridge.settings import Settings


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, "rabbit_bridge", runtime=True)
    value_format = providers.Singleton(
        value_format_from, settings.provided.formats, ServiceContainer.shutdown, metrics
    )
    publisher = closing(RabbitPublisher, settings.provided.rabbitmq_url, settings.provided.topology)
    dead_letters = closing(CheckedProducer, settings.provided.kafka)
    # Closed first: giving its partitions up settles the batches in flight with the publisher.
    consumer = closing(
        BatchConsumer,
        settings.provided.kafka,
        settings.provided.consumer_group,
        needs=[publisher, dead_letters],
        metrics=metrics,
    )
    relay = providers.Singleton(
        Relay,
        source=consumer,
        publisher=publisher,
        dead_letters=dead_letters,
        dead_letter_topic=settings.provided.dead_letter_topic,
        metrics=metrics,
        shutdown=ServiceContainer.shutdown,
        batch_size=settings.provided.batch_size,
        routing_prefix=settings.provided.routing_prefix,
        value_format=value_format,
        rabbit_json=settings.provided.rabbit_json,
    )
    service = providers.Singleton(
        BridgeService,
        settings=settings,
        topics=providers.List(
            providers.Factory(TopicSpec, settings.provided.vip_actions_topic),
            providers.Factory(TopicSpec, settings.provided.dead_letter_topic),
        ),
        publisher=publisher,
        consumer=consumer,
        relay=relay,
        shutdown=ServiceContainer.shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "rabbit-bridge", Settings.from_env, Container, description=__doc__, argv=argv
    )


if __name__ == "__main__":
    sys.exit(main())
