"""user-state's start-up, in order: its topics; the users topic's partitions assigned; the
restore of the table with the cyclic collector paused; then serving. The API answers from the
first moment, with 503 until the table has caught up."""

from __future__ import annotations

from collections.abc import Sequence

from clickstream_common.http import Router
from clickstream_common.kafka import TableReader, TopicSpec, ensure_topics
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.settings import KafkaSettings

from clickstream_user_state.api import build_routes
from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.memory import pause_collection
from clickstream_user_state.store import UserStore

log = get_logger(__name__)


class UserStateService:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topics: Sequence[TopicSpec],
        store: UserStore,
        reader: TableReader,
        loader: UsersLoader,
        router: Router,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> None:
        self._kafka = kafka
        self._topics = topics
        self._reader = reader
        self._loader = loader
        self._shutdown = shutdown
        build_routes(router, store, lambda: loader.ready, metrics)

    @property
    def ready(self) -> bool:
        return self._loader.ready

    def run(self) -> None:
        ensure_topics(self._kafka, self._topics)
        self._reader.start()
        log.info("user-state started", users_topic=self._topics[0].name)
        pause_collection()
        self._loader.run(self._shutdown)
