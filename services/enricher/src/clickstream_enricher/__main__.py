"""enricher: the streaming query (by default the seed's SQL), joining each batch of clicks to
user-state and delivering the rows it selects to Kafka, at least once or exactly once.

Configured only by environment variables: README.md § The services lists them and their defaults.
"""

from __future__ import annotations

import sys

from clickstream_common.delivery import AtLeastOnceCommitter, ExactlyOnceCommitter
from clickstream_common.kafka import (
    BatchConsumer,
    CheckedProducer,
    TopicSpec,
    TransactionalProducer,
)
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_enricher.pending import PendingClicks
from clickstream_enricher.processor import ClickProcessor, OutputTopics
from clickstream_enricher.service import EnricherService
from clickstream_enricher.settings import Settings
from clickstream_enricher.user_state_client import UserStateClient


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, "enricher", runtime=True)
    partitions = settings.provided.topic_partitions
    users = closing(UserStateClient, settings.provided.user_state_url, ServiceContainer.shutdown)
    consumer = closing(BatchConsumer, settings.provided.kafka, settings.provided.consumer_group)
    # ENRICHER_DELIVERY picks the strategy; only the chosen one's producer is ever created.
    producer = providers.Selector(
        settings.provided.delivery,
        at_least_once=closing(CheckedProducer, settings.provided.kafka),
        exactly_once=closing(
            TransactionalProducer, settings.provided.kafka, settings.provided.transactional_id
        ),
    )
    committer = providers.Selector(
        settings.provided.delivery,
        at_least_once=providers.Singleton(AtLeastOnceCommitter, producer, consumer),
        exactly_once=providers.Singleton(ExactlyOnceCommitter, producer, consumer),
    )
    processor = providers.Singleton(
        ClickProcessor,
        source=consumer,
        committer=committer,
        users=users,
        query=settings.provided.query,
        topics=providers.Factory(
            OutputTopics,
            vip_actions=settings.provided.vip_actions_topic,
            dead_letter=settings.provided.dead_letter_topic,
            unmatched=settings.provided.unmatched_topic,
        ),
        join_mode=settings.provided.join_mode,
        pending=providers.Factory(
            PendingClicks, settings.provided.grace_seconds, settings.provided.pending_capacity
        ),
        metrics=metrics,
        batch_size=settings.provided.batch_size,
        pipelined=settings.provided.pipelined,
    )
    service = providers.Singleton(
        EnricherService,
        settings=settings,
        topics=providers.List(
            providers.Factory(TopicSpec, settings.provided.clicks_topic, partitions),
            providers.Factory(TopicSpec, settings.provided.vip_actions_topic, partitions),
            providers.Factory(TopicSpec, settings.provided.dead_letter_topic, partitions),
            providers.Factory(TopicSpec, settings.provided.unmatched_topic, partitions),
        ),
        committer=committer,
        users=users,
        consumer=consumer,
        processor=processor,
        shutdown=ServiceContainer.shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service("enricher", Settings.from_env, Container, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
