"""Keeps the activity board in step with a windowed query's output topic (sessions, or business
days), read whole like the users topic; a row it cannot read goes to `<topic>.dlq` with the
reason."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from clickstream_common.contracts import BadRecord
from clickstream_common.dead_letter import dead_letter
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord, Record

from clickstream_user_state.catch_up import CatchUp, TableSource
from clickstream_user_state.loader import DeadLetterSink

log = get_logger(__name__)

Change = TypeVar("Change")


class ActivityLoader(Generic[Change]):
    def __init__(
        self,
        *,
        kind: str,
        source: TableSource,
        decode: Callable[[Record], Change],
        apply: Callable[[list[Change]], None],
        metrics: Metrics,
        dead_letters: DeadLetterSink | None,
        batch_size: int = 5000,
    ) -> None:
        """`kind` names it in logs and metrics: `sessions`, `days` or `actions`. Without
        `dead_letters` a row it cannot read is counted and skipped (the VipActions' DLQ is the
        bridge's)."""
        self._kind = kind
        self._source = source
        self._decode = decode
        self._apply = apply
        self._metrics = metrics
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._catch_up = CatchUp(source)
        self._ready = threading.Event()
        metrics.counter(f"{kind}_rows_applied", f"{kind} rows applied to the activity board")
        self._refused = f"{kind}_rows_dead_lettered" if dead_letters else f"{kind}_rows_skipped"
        metrics.counter(self._refused, f"{kind} rows refused (sent to the DLQ, if it has one)")

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def run(self, shutdown: Shutdown) -> None:
        log.info("activity bootstrap started", kind=self._kind, end_offsets=self._catch_up.start())
        while not shutdown.requested:
            if not self._ready.is_set() and self._catch_up.reached():
                self._ready.set()
                log.info("activity bootstrap complete", kind=self._kind)
            records = self._source.poll_batch(self._batch_size, 0.5)
            if records:
                self._take(records)

    def _take(self, records: list[Record]) -> None:
        changes: list[Change] = []
        rejected: list[OutRecord] = []
        for record in records:
            try:
                changes.append(self._decode(record))
            except BadRecord as exc:
                rejected.append(dead_letter(record, str(exc)))
        self._apply(changes)
        self._metrics.inc(f"{self._kind}_rows_applied", len(changes))
        if rejected:
            if self._dead_letters is not None:
                self._dead_letters.send_all(rejected)
                self._dead_letters.flush()
            self._metrics.inc(self._refused, len(rejected))
            log.warning("activity rows refused", kind=self._kind, count=len(rejected))
