"""The enricher's start-up, in order: its topics; the delivery strategy started (exactly once,
`init_transactions` fences and aborts what a previous instance with the same transactional id
left open, before any offset is read); user-state ready (semantics 2: no click is processed
before the users table is loaded); then the subscription, with the processor as the rebalance
listener, and the query's loop until shutdown."""

from __future__ import annotations

from collections.abc import Sequence

from clickstream_common.delivery import BatchCommitter
from clickstream_common.gc_pauses import freeze_startup_heap
from clickstream_common.kafka import BatchConsumer, TopicSpec, ensure_topics
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger

from clickstream_enricher.processor import ClickProcessor
from clickstream_enricher.settings import Settings
from clickstream_enricher.user_state_client import UserStateClient, UserStateUnavailable

log = get_logger(__name__)


class EnricherService:
    def __init__(
        self,
        *,
        settings: Settings,
        topics: Sequence[TopicSpec],
        committer: BatchCommitter,
        users: UserStateClient,
        consumer: BatchConsumer,
        processor: ClickProcessor,
        shutdown: Shutdown,
    ) -> None:
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
        return self._consuming

    def run(self) -> None:
        try:
            self._run()
        except UserStateUnavailable:
            # Only raised once shutdown was requested: whatever waited for user-state stays
            # uncommitted and is read again on restart.
            log.info("stopped while waiting for user-state")

    def _run(self) -> None:
        settings = self._settings
        ensure_topics(settings.kafka, self._topics)
        self._committer.start()
        log.info("waiting for user-state to load the users table", url=settings.user_state_url)
        self._users.wait_ready()
        self._consumer.subscribe([settings.clicks_topic], self._processor)
        self._consuming = True
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
        self._processor.run(self._shutdown)
