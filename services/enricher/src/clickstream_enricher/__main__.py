"""enricher: the streaming query (by default the seed's SQL). A join query looks each batch of
clicks up in user-state and delivers the rows it selects; a windowed query aggregates one
stream, or clicks joined to their users, into sessions or per-day rows, with its state in a
changelog topic. Either delivers to Kafka at least once or exactly once.

Configured only by environment variables: README.md § The services lists them and their defaults.
"""

from __future__ import annotations

import sys

from clickstream_common.avro import value_format_from
from clickstream_common.delivery import (
    AtLeastOnceCommitter,
    ExactlyOnceCommitter,
    PipelinedCommitter,
)
from clickstream_common.kafka import (
    BatchConsumer,
    ChangelogReader,
    CheckedProducer,
    TopicSpec,
    TransactionalProducer,
)
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from dependency_injector import providers

from clickstream_enricher.aggregating import WindowProcessor, WindowTopics
from clickstream_enricher.pending import PendingClicks
from clickstream_enricher.processor import ClickProcessor, OutputTopics
from clickstream_enricher.service import EnricherService
from clickstream_enricher.settings import Settings
from clickstream_enricher.user_state_client import UserStateClient
from clickstream_enricher.window_inputs import JoinedClicks, JoinTopics, StreamRows
from clickstream_enricher.windows.operator import WindowOperator
from clickstream_enricher.windows.watermarks import Watermarks


def topic_specs(names: tuple[str, ...], partitions: int) -> list[TopicSpec]:
    return [TopicSpec(name, partitions) for name in names]


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=Settings)
    metrics = providers.Singleton(Metrics, "enricher", runtime=True)
    value_format = providers.Singleton(
        value_format_from, settings.provided.formats, ServiceContainer.shutdown, metrics
    )
    partitions = settings.provided.topic_partitions
    windows = settings.provided.windows
    consumer = closing(
        BatchConsumer, settings.provided.kafka, settings.provided.consumer_group, metrics=metrics
    )
    # ENRICHER_DELIVERY picks the strategy; only the chosen one's producer is ever created.
    producer = providers.Selector(
        settings.provided.delivery,
        # No linger: a batch's outputs are produced together and their acknowledgements awaited
        # one batch later (PipelinedCommitter), so waiting 5 ms more to fill a request would
        # only add latency (the flush per batch that this replaced sent at once too).
        at_least_once=closing(CheckedProducer, settings.provided.kafka, {"linger.ms": 0}),
        exactly_once=closing(
            TransactionalProducer, settings.provided.kafka, settings.provided.transactional_id
        ),
    )
    exactly_once = providers.Singleton(ExactlyOnceCommitter, producer, consumer)
    committer = providers.Selector(
        settings.provided.delivery,
        at_least_once=providers.Singleton(AtLeastOnceCommitter, producer, consumer),
        exactly_once=exactly_once,
    )
    # The join overlaps a batch's acknowledgements with the next batch; a windowed query sends
    # its changelog only once its rows are acknowledged (WindowProcessor._deliver), so not it.
    join_committer = providers.Selector(
        settings.provided.delivery,
        at_least_once=providers.Singleton(PipelinedCommitter, producer, consumer),
        exactly_once=exactly_once,
    )

    # The join: clicks looked up in user-state.
    users = closing(
        UserStateClient,
        settings.provided.user_state_url,
        ServiceContainer.shutdown,
        metrics=metrics,
    )
    pending = providers.Factory(
        PendingClicks, settings.provided.grace_seconds, settings.provided.pending_capacity
    )
    join = providers.Singleton(
        ClickProcessor,
        source=consumer,
        committer=join_committer,
        users=users,
        query=settings.provided.query,
        topics=providers.Factory(
            OutputTopics,
            vip_actions=settings.provided.vip_actions_topic,
            dead_letter=settings.provided.dead_letter_topic,
            unmatched=settings.provided.unmatched_topic,
        ),
        join_mode=settings.provided.join_mode,
        pending=pending,
        metrics=metrics,
        batch_size=settings.provided.batch_size,
        pipelined=settings.provided.pipelined,
        value_format=value_format,
    )

    # A windowed query: one stream, or clicks joined to users, aggregated; its state in a
    # changelog.
    aggregate = providers.Singleton(
        WindowProcessor,
        source=consumer,
        committer=committer,
        query=settings.provided.query,
        input_rows=providers.Selector(
            settings.provided.reads,
            one_stream=providers.Factory(
                StreamRows, settings.provided.dead_letter_topic, value_format
            ),
            clicks_and_users=providers.Factory(
                JoinedClicks,
                users=users,
                resumer=committer,
                join=settings.provided.query.join,
                as_of=settings.provided.as_of,
                pending=pending,
                topics=providers.Factory(
                    JoinTopics,
                    dead_letter=settings.provided.dead_letter_topic,
                    unmatched=settings.provided.unmatched_topic,
                ),
                value_format=value_format,
            ),
        ),
        operator=providers.Singleton(
            WindowOperator,
            settings.provided.query,
            providers.Factory(Watermarks, windows.allowed_lateness_ms, windows.idle_timeout_ms),
            windows.business_timezone,
        ),
        changelog=closing(ChangelogReader, settings.provided.kafka, windows.changelog_topic),
        topics=providers.Factory(
            WindowTopics,
            output=settings.provided.vip_actions_topic,
            dead_letter=settings.provided.dead_letter_topic,
            late=windows.late_topic,
        ),
        metrics=metrics,
        batch_size=settings.provided.batch_size,
        value_format=value_format,
    )

    service = providers.Singleton(
        EnricherService,
        settings=settings,
        topics=providers.Callable(topic_specs, settings.provided.topics, partitions),
        committer=committer,
        users=providers.Selector(
            settings.provided.reads, clicks_and_users=users, one_stream=providers.Object(None)
        ),
        consumer=consumer,
        processor=providers.Selector(settings.provided.mode, join=join, aggregate=aggregate),
        shutdown=ServiceContainer.shutdown,
    )


def main(argv: list[str] | None = None) -> int:
    return run_service("enricher", Settings.from_env, Container, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
