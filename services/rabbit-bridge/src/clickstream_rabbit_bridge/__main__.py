"""Composition root of rabbit-bridge: settings, logging, wiring, signals, health, run, shutdown."""

from __future__ import annotations

import sys

from clickstream_common.gc_pauses import freeze_startup_heap
from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.kafka import (
    BatchConsumer,
    CheckedProducer,
    KafkaFatalError,
    TopicSpec,
    ensure_topics,
)
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import configure_logging, get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.rabbit import RabbitPublisher, RabbitUnavailable, mask_url
from clickstream_common.settings import SettingsError
from dependency_injector import containers, providers

from clickstream_rabbit_bridge.relay import Relay
from clickstream_rabbit_bridge.settings import Settings

log = get_logger("clickstream_rabbit_bridge")


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    shutdown = providers.Singleton(Shutdown)
    metrics = providers.Singleton(Metrics, prefix="rabbit_bridge")
    publisher = providers.Singleton(
        RabbitPublisher, settings.provided.rabbitmq_url, settings.provided.topology
    )
    dead_letters = providers.Singleton(CheckedProducer, settings.provided.kafka)
    consumer = providers.Singleton(
        BatchConsumer, settings.provided.kafka, settings.provided.consumer_group
    )
    relay = providers.Singleton(
        Relay,
        source=consumer,
        publisher=publisher,
        dead_letters=dead_letters,
        dead_letter_topic=settings.provided.dead_letter_topic,
        metrics=metrics,
        shutdown=shutdown,
        batch_size=settings.provided.batch_size,
        routing_prefix=settings.provided.routing_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"rabbit-bridge: {exc}", file=sys.stderr)
        return 2
    obs = settings.observability
    configure_logging("rabbit-bridge", obs.log_level, obs.log_format)
    container = Container(settings=settings)
    shutdown = container.shutdown()
    shutdown.install()
    metrics = container.metrics()
    publisher = container.publisher()
    router = Router()
    add_health_routes(router, live=lambda: True, ready=lambda: publisher.healthy, metrics=metrics)
    server = HttpServer(router, "0.0.0.0", obs.http_port)
    server.start()
    exit_code = 0
    try:
        ensure_topics(
            settings.kafka,
            [TopicSpec(settings.vip_actions_topic), TopicSpec(settings.dead_letter_topic)],
        )
        publisher.start()
        log.info(
            "rabbit-bridge relaying",
            topic=settings.vip_actions_topic,
            rabbitmq=mask_url(settings.rabbitmq_url),
            exchange=settings.topology.exchange,
            queue=settings.topology.queue,
        )
        relay = container.relay()
        # The relay settles what it read of a partition before the consumer gives it up.
        container.consumer().subscribe([settings.vip_actions_topic], relay)
        freeze_startup_heap()
        try:
            relay.run()
        finally:
            container.consumer().close()
    except RabbitUnavailable as exc:
        log.error("rabbitmq unavailable", error=str(exc))
        exit_code = 1
    except KafkaFatalError as exc:
        log.error("rabbit-bridge cannot go on with Kafka", error=str(exc))
        exit_code = 1
    except Exception:
        log.exception("rabbit-bridge failed")
        exit_code = 1
    finally:
        publisher.close()
        container.dead_letters().close()
        server.stop()
    log.info("rabbit-bridge stopped", exit_code=exit_code, **metrics.snapshot())
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
