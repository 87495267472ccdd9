"""Composition root of the enricher: settings, logging, wiring, signals, health, run, shutdown."""

from __future__ import annotations

import sys

from clickstream_common.delivery import AtLeastOnceCommitter, ExactlyOnceCommitter
from clickstream_common.gc_pauses import freeze_startup_heap
from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.kafka import (
    BatchConsumer,
    CheckedProducer,
    KafkaFatalError,
    TopicSpec,
    TransactionalProducer,
    ensure_topics,
)
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import configure_logging, get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.settings import SettingsError
from dependency_injector import containers, providers

from clickstream_enricher.pending import PendingClicks
from clickstream_enricher.processor import ClickProcessor, OutputTopics
from clickstream_enricher.settings import Settings
from clickstream_enricher.user_state_client import UserStateClient, UserStateUnavailable

log = get_logger("clickstream_enricher")


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    # Joins the group only once user-state is ready, so main provides it then.
    consumer = providers.Dependency(instance_of=BatchConsumer)
    shutdown = providers.Singleton(Shutdown)
    metrics = providers.Singleton(Metrics, prefix="enricher")
    users = providers.Singleton(UserStateClient, settings.provided.user_state_url, shutdown)
    # ENRICHER_DELIVERY picks the strategy; only the chosen one's producer is ever created.
    producer = providers.Selector(
        settings.provided.delivery,
        at_least_once=providers.Singleton(CheckedProducer, settings.provided.kafka),
        exactly_once=providers.Singleton(
            TransactionalProducer, settings.provided.kafka, settings.provided.transactional_id
        ),
    )
    committer = providers.Selector(
        settings.provided.delivery,
        at_least_once=providers.Singleton(AtLeastOnceCommitter, producer, consumer),
        exactly_once=providers.Singleton(ExactlyOnceCommitter, producer, consumer),
    )
    pending = providers.Singleton(
        PendingClicks, settings.provided.grace_seconds, settings.provided.pending_capacity
    )
    topics = providers.Singleton(
        OutputTopics,
        vip_actions=settings.provided.vip_actions_topic,
        dead_letter=settings.provided.dead_letter_topic,
        unmatched=settings.provided.unmatched_topic,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"enricher: {exc}", file=sys.stderr)
        return 2
    obs = settings.observability
    configure_logging("enricher", obs.log_level, obs.log_format)
    container = Container(settings=settings)
    shutdown = container.shutdown()
    shutdown.install()
    metrics = container.metrics()
    consuming = False
    router = Router()
    add_health_routes(router, live=lambda: True, ready=lambda: consuming, metrics=metrics)
    server = HttpServer(router, "0.0.0.0", obs.http_port)
    server.start()
    users = container.users()
    producer = None
    exit_code = 0
    try:
        ensure_topics(
            settings.kafka,
            [
                TopicSpec(settings.clicks_topic, settings.topic_partitions),
                TopicSpec(settings.vip_actions_topic, settings.topic_partitions),
                TopicSpec(settings.dead_letter_topic, settings.topic_partitions),
                TopicSpec(settings.unmatched_topic, settings.topic_partitions),
            ],
        )
        producer = container.producer()
        if isinstance(producer, TransactionalProducer):
            # Exactly once, this is where init_transactions fences and aborts what a previous
            # instance with the same transactional id left open: before any offset is read.
            producer.start()
        log.info("waiting for user-state to load the users table", url=settings.user_state_url)
        users.wait_ready()
        consumer = BatchConsumer(settings.kafka, settings.consumer_group)
        container.consumer.override(consumer)
        processor = ClickProcessor(
            source=consumer,
            committer=container.committer(),
            users=users,
            query=settings.query,
            topics=container.topics(),
            join_mode=settings.join_mode,
            pending=container.pending(),
            metrics=metrics,
            batch_size=settings.batch_size,
            # At least once, the next batch's lookup overlaps this one's delivery; exactly once
            # keeps one batch at a time (see ClickProcessor).
            pipelined=settings.delivery == "at_least_once",
        )
        # Its rebalance callbacks run inside the consumer's poll, i.e. between batches.
        consumer.subscribe([settings.clicks_topic], processor)
        consuming = True
        log.info(
            "enricher consuming",
            topic=settings.clicks_topic,
            join=settings.query.join,
            join_mode=settings.join_mode,
            delivery=settings.delivery,
            **(
                {"transactional_id": settings.transactional_id}
                if settings.delivery == "exactly_once"
                else {}
            ),
            columns=list(settings.query.columns),
        )
        freeze_startup_heap()
        try:
            processor.run(shutdown)
        finally:
            consumer.close()
    except UserStateUnavailable:
        log.info("stopped while waiting for user-state")
    except KafkaFatalError as exc:
        log.error("enricher cannot go on with Kafka", error=str(exc))
        exit_code = 1
    except Exception:
        log.exception("enricher failed")
        exit_code = 1
    finally:
        if producer is not None:
            producer.close()
        users.close()
        server.stop()
    log.info("enricher stopped", exit_code=exit_code, **metrics.snapshot())
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
