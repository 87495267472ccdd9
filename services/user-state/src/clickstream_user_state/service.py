"""user-state's start-up, in order: its topics, the API (answering 503 until the table is
ready), then the restore of the users table with the cyclic collector paused, and serving."""

from __future__ import annotations

from collections.abc import Sequence

from clickstream_common.http import Router
from clickstream_common.kafka import TopicSpec, ensure_topics
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
        loader: UsersLoader,
        router: Router,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> None:
        self._kafka = kafka
        self._topics = topics
        self._loader = loader
        self._shutdown = shutdown
        build_routes(router, store, lambda: loader.ready, metrics)

    @property
    def ready(self) -> bool:
        return self._loader.ready

    def run(self) -> None:
        ensure_topics(self._kafka, self._topics)
        log.info("user-state started", users_topic=self._topics[0].name)
        pause_collection()
        self._loader.run(self._shutdown)
