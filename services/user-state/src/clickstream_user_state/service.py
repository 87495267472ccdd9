"""user-state's start-up, in order: its topics; the users and activity topics' partitions
assigned; the restore of the table with the cyclic collector paused; then serving. The API answers
from the first moment, with 503 until the table (and, for the activity routes, the activity
topics) have caught up."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from clickstream_common.http import Router
from clickstream_common.kafka import TableReader, TopicSpec, ensure_topics
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.settings import KafkaSettings

from clickstream_user_state.activity_api import build_activity_routes
from clickstream_user_state.activity_live import LiveActivity
from clickstream_user_state.activity_views import Views
from clickstream_user_state.api import build_routes
from clickstream_user_state.loader import UsersLoader
from clickstream_user_state.memory import pause_collection
from clickstream_user_state.page import build_page_routes
from clickstream_user_state.store import UserStore

log = get_logger(__name__)


class Loader(Protocol):
    @property
    def ready(self) -> bool: ...

    def run(self, shutdown: Shutdown) -> None: ...


class UserStateService:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        topics: Sequence[TopicSpec],
        store: UserStore,
        readers: Sequence[TableReader],
        loader: UsersLoader,
        views: Views,
        live: LiveActivity,
        activity_loaders: Sequence[Loader],
        router: Router,
        metrics: Metrics,
        shutdown: Shutdown,
    ) -> None:
        """`readers`: the users topic's first, then the activity topics'; `activity_loaders`
        and `live` (its sampler) run on threads of their own beside the users loader."""
        self._kafka = kafka
        self._topics = topics
        self._readers = readers
        self._loader = loader
        self._activity_loaders = activity_loaders
        self._workers: list[Loader] = [*activity_loaders, live]
        self._shutdown = shutdown
        build_routes(router, store, lambda: loader.ready, metrics)
        build_activity_routes(router, views, self._activity_ready, live)
        build_page_routes(router)
        live.sample_when(self._activity_ready)
        board = views.board
        self._failures: list[BaseException] = []
        metrics.gauge(
            "open_sessions",
            "VIP sessions open on the activity board",
            lambda: float(board.open_sessions),
        )
        metrics.gauge(
            "vips_on_site",
            "VIPs on the site now, by the stream's clock",
            lambda: float(len(board.on_site(views.now_ms()))),
        )
        metrics.gauge("stream_clients", "clients of /v1/vips/stream", lambda: float(live.clients))
        metrics.gauge(
            "stream_clients_dropped",
            "stream clients disconnected for falling behind, since start",
            lambda: float(live.dropped),
        )

    def _activity_ready(self) -> bool:
        return self._loader.ready and all(a.ready for a in self._activity_loaders)

    @property
    def ready(self) -> bool:
        return self._activity_ready()

    def run(self) -> None:
        ensure_topics(self._kafka, self._topics, stopping=self._shutdown)
        for reader in self._readers:
            reader.start()
        log.info("user-state started", topics=[t.name for t in self._topics])
        threads = [
            threading.Thread(target=self._run_loader, args=(worker,), name=f"activity-{i}")
            for i, worker in enumerate(self._workers)
        ]
        for thread in threads:
            thread.start()
        try:
            pause_collection()
            self._loader.run(self._shutdown)
        finally:
            self._shutdown.request()
            for thread in threads:
                thread.join()
        if self._failures:
            raise self._failures[0]

    def _run_loader(self, loader: Loader) -> None:
        """A failed activity worker stops the whole service, so it never stays unready unseen."""
        try:
            loader.run(self._shutdown)
        except BaseException as exc:
            self._failures.append(exc)
            self._shutdown.request()
