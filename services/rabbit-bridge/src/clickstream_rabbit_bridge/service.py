"""rabbit-bridge's start-up, in order: its topics, RabbitMQ connected and the topology declared
(both brokers waited for while they do not answer; a broker refusing a setting fails here, not
mid-stream), then the subscription with the relay
as the rebalance listener, and the relay's loop until shutdown."""

from __future__ import annotations

from collections.abc import Sequence

from clickstream_common.gc_pauses import freeze_startup_heap
from clickstream_common.kafka import BatchConsumer, TopicSpec, ensure_topics
from clickstream_common.logging import get_logger
from clickstream_common.rabbit import RabbitPublisher, RabbitRefused, RabbitUnavailable, mask_url
from clickstream_common.startup import Stopping, wait_for

from clickstream_rabbit_bridge.relay import Relay
from clickstream_rabbit_bridge.settings import Settings

log = get_logger(__name__)


class BridgeService:
    def __init__(
        self,
        *,
        settings: Settings,
        topics: Sequence[TopicSpec],
        publisher: RabbitPublisher,
        consumer: BatchConsumer,
        relay: Relay,
        shutdown: Stopping,
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._publisher = publisher
        self._consumer = consumer
        self._relay = relay
        self._shutdown = shutdown

    @property
    def ready(self) -> bool:
        return self._publisher.healthy

    def run(self) -> None:
        settings = self._settings
        ensure_topics(settings.kafka, self._topics, stopping=self._shutdown)
        wait_for(
            f"RabbitMQ at {mask_url(settings.rabbitmq_url)}",
            self._publisher.start,
            unavailable=RabbitUnavailable,
            refused=RabbitRefused,
            stopping=self._shutdown,
        )
        log.info(
            "rabbit-bridge relaying",
            topic=settings.vip_actions_topic,
            rabbitmq=mask_url(settings.rabbitmq_url),
            exchange=settings.topology.exchange,
            queue=settings.topology.queue,
        )
        self._consumer.subscribe([settings.vip_actions_topic], self._relay)
        freeze_startup_heap()
        self._relay.run()
