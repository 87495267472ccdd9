"""Keeps the store in step with the users topic and decides when it is ready.

Ready means caught up to the end offsets seen at start (docs/ARCHITECTURE.md § Semantics 2):
before that a lookup could miss a user that exists, and the enricher would drop that user's clicks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from clickstream_common.contracts import BadRecord, ObjectReader
from clickstream_common.dead_letter import dead_letter
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord, Record

from clickstream_user_state.catch_up import CatchUp, TableSource
from clickstream_user_state.store import UserStore
from clickstream_user_state.user_changes import decode_user_change

log = get_logger(__name__)


class DeadLetterSink(Protocol):
    def send_all(self, records: list[OutRecord]) -> None: ...
    def flush(self) -> None: ...


class UsersLoader:
    def __init__(
        self,
        source: TableSource,
        store: UserStore,
        metrics: Metrics,
        dead_letters: DeadLetterSink,
        batch_size: int = 10_000,
        on_caught_up: Callable[[], None] = lambda: None,
        reader: ObjectReader | None = None,
    ) -> None:
        """`reader`: the users topic's format, None for JSON (decoded on a faster path)."""
        self._source = source
        self._reader = reader
        self._store = store
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._on_caught_up = on_caught_up
        self._ready = threading.Event()
        self._catch_up = CatchUp(source)
        metrics.counter("users_applied", "user records applied to the table, tombstones included")
        metrics.counter("users_dead_lettered", "user records refused and sent to the DLQ")
        metrics.gauge("users", "users currently in the table", lambda: float(len(store)))
        metrics.gauge("ready", "1 once the table caught up with the topic", self._ready_value)

    def _ready_value(self) -> float:
        return 1.0 if self._ready.is_set() else 0.0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def run(self, shutdown: Shutdown) -> None:
        started = time.monotonic()
        log.info("bootstrap started", end_offsets=self._catch_up.start())
        self._check_caught_up(started)
        while not shutdown.requested:
            records = self._source.poll_batch(self._batch_size, 0.5)
            if records:
                self._apply(records)
            if not self._ready.is_set():
                self._check_caught_up(started)

    def _apply(self, records: list[Record]) -> None:
        rejected: list[OutRecord] = []
        put, delete = self._store.put, self._store.delete
        # Records produced together share their millisecond: each stored version then points at
        # one int object of it, not its own 32-byte copy (32 MB a million users).
        timestamp_ms = -1
        for record in records:
            try:
                change = decode_user_change(record, self._reader)
            except BadRecord as exc:
                rejected.append(dead_letter(record, str(exc)))
                continue
            if record.timestamp_ms != timestamp_ms:
                timestamp_ms = record.timestamp_ms
            if isinstance(change, str):
                delete(change, timestamp_ms)
            else:
                user_id, name, level = change
                put(user_id, timestamp_ms, name, level)
        self._metrics.inc("users_applied", len(records) - len(rejected))
        if rejected:
            self._dead_letters.send_all(rejected)
            self._dead_letters.flush()
            self._metrics.inc("users_dead_lettered", len(rejected))
            log.warning("user records dead-lettered", count=len(rejected))

    def _check_caught_up(self, started: float) -> None:
        if self._catch_up.reached():
            self._on_caught_up()
            self._ready.set()
            log.info(
                "bootstrap complete",
                users=len(self._store),
                seconds=round(time.monotonic() - started, 3),
            )
