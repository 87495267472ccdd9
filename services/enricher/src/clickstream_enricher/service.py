"""The enricher's start-up, in order (after `run_service` registered its output's schema, with
VALUE_FORMAT=avro): its topics (and, for a windowed query, the changelog, with as many
partitions as its input); the delivery strategy started (exactly once, `init_transactions`
fences and aborts what a previous instance with the same transactional id left open, before any
offset is read); for a query that joins, user-state ready (semantics 2: no click is processed
before the users table is loaded); then the subscription, with the processor as the rebalance
listener (a windowed query restores each partition's state there), and the query's loop until
shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from clickstream_common.delivery import BatchCommitter
from clickstream_common.gc_pauses import freeze_startup_heap
from clickstream_common.kafka import (
    BatchConsumer,
    KafkaFatalError,
    TopicSpec,
    ensure_topics,
    partition_count,
)
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.records import PartitionKey

from clickstream_enricher.settings import Settings
from clickstream_enricher.user_state_client import UserStateClient, UserStateUnavailable

log = get_logger(__name__)


class QueryLoop(Protocol):
    """`ClickProcessor` (the join) or `WindowProcessor` (a windowed query)."""

    @property
    def ready(self) -> bool:
        """False while it cannot take records (a windowed query restoring its state)."""
        ...

    def on_assign(self, partitions: list[PartitionKey]) -> None: ...
    def on_revoke(self, partitions: list[PartitionKey]) -> None: ...
    def run(self, shutdown: Shutdown) -> None: ...


class EnricherService:
    def __init__(
        self,
        *,
        settings: Settings,
        topics: Sequence[TopicSpec],
        committer: BatchCommitter,
        users: UserStateClient | None,
        consumer: BatchConsumer,
        processor: QueryLoop,
        shutdown: Shutdown,
    ) -> None:
        """`users` is None for a query that joins nothing."""
        self._settings = settings
        self._topics = topics
        self._committer = committer
        self._users = users
        self._consumer = consumer
        self._processor = processor
        self._shutdown = shutdown
        self._consuming = False

    @property
    def ready(self) -> bool:
        return self._consuming and self._processor.ready

    def run(self) -> None:
        try:
            self._run()
        except UserStateUnavailable:
            # Only raised once shutdown was requested: whatever waited for user-state stays
            # uncommitted and is read again on restart.
            log.info("stopped while waiting for user-state")

    def _run(self) -> None:
        settings = self._settings
        ensure_topics(settings.kafka, self._topics, stopping=self._shutdown)
        if settings.mode == "aggregate":
            self._ensure_changelog()
        self._committer.start()
        if self._users is not None:
            log.info("waiting for user-state to load the users table", url=settings.user_state_url)
            self._users.wait_ready()
        self._consumer.subscribe([settings.clicks_topic], self._processor)
        self._consuming = True
        log.info(
            "enricher consuming",
            topic=settings.clicks_topic,
            output=settings.vip_actions_topic,
            mode=settings.mode,
            join=settings.query.join,
            delivery=settings.delivery,
            **(
                {"transactional_id": settings.transactional_id}
                if settings.delivery == "exactly_once"
                else {}
            ),
            **({"join_mode": settings.join_mode} if self._users is not None else {}),
            **(
                {"changelog": settings.windows.changelog_topic}
                if settings.mode == "aggregate"
                else {}
            ),
            columns=list(settings.query.columns),
        )
        freeze_startup_heap()
        self._processor.run(self._shutdown)

    def _ensure_changelog(self) -> None:
        """One changelog partition per input partition: a partition's state follows it."""
        settings = self._settings
        changelog = settings.windows.changelog_topic
        inputs = partition_count(settings.kafka, settings.clicks_topic)
        ensure_topics(settings.kafka, [TopicSpec(changelog, inputs, compact=True)])
        have = partition_count(settings.kafka, changelog)
        if have != inputs:
            raise KafkaFatalError(
                f"changelog {changelog} has {have} partitions but its input "
                f"{settings.clicks_topic} has {inputs}: they must match"
            )
