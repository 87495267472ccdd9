"""Produces the users, then a paced click stream, to Kafka.

Users go first and are flushed before any click, so a consumer that bootstraps the users topic
sees every user a valid click can name. Deliveries are checked at every flush: a record the broker
did not take stops the run instead of vanishing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.kafka import CheckedProducer, TopicSpec, ensure_topics
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord

from clickstream_generator import data
from clickstream_generator.pacing import Pacer
from clickstream_generator.settings import GeneratorSettings
from clickstream_generator.visits import TimedClick, Upgrade, visits

log = get_logger(__name__)

USER_BATCH = 1000
FLUSH_SECONDS = 2.0
PROGRESS_SECONDS = 10.0


@dataclass(frozen=True)
class RunSummary:
    users: int
    clicks: int  # every record sent to the clicks topic, malformed ones included
    unknown_user_clicks: int
    malformed: int
    seconds: float
    stopped: bool  # shutdown was requested before the configured counts were reached


@dataclass
class _Tally:
    clicks: int = 0
    unknown: int = 0
    malformed: int = 0


class GeneratorRunner:
    def __init__(
        self,
        settings: GeneratorSettings,
        producer: CheckedProducer,
        metrics: Metrics,
        shutdown: Shutdown,
        value_format: ValueFormat = JSON,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        # VALUE_FORMAT=avro: the streams' schemas, registered by `run_service` before `run`.
        self._write_user = value_format.writer(settings.users_topic, "Users")
        self._write_click = value_format.writer(settings.clicks_topic, "Clicks")
        self._wall_clock = wall_clock
        self._producer = producer
        self._metrics = metrics
        self._shutdown = shutdown
        self._clock = clock
        self._producing = threading.Event()
        metrics.counter("users_produced", "user records sent to the users topic")
        metrics.counter("clicks_produced", "records sent to the clicks topic, malformed included")
        metrics.counter("unknown_user_clicks_produced", "clicks whose user_id names no user")
        metrics.counter("malformed_produced", "off-contract records sent to the clicks topic")
        metrics.counter("level_changes_produced", "new user versions with another level")

    @property
    def ready(self) -> bool:
        """Readiness: topics exist and records are flowing."""
        return self._producing.is_set()

    def run(self) -> RunSummary:
        settings = self._settings
        started = self._clock()
        log.info(
            "generator starting",
            users_topic=settings.users_topic,
            clicks_topic=settings.clicks_topic,
            users=settings.users,
            clicks=settings.clicks or "until stopped",
            rate=settings.rate or "unlimited",
            time_scale=settings.time_scale or "off",
            seed=settings.seed,
            unknown_user_share=settings.unknown_user_share,
            malformed_share=settings.malformed_share,
        )
        ensure_topics(
            settings.kafka,
            [
                TopicSpec(settings.users_topic, settings.topic_partitions, compact=True),
                TopicSpec(settings.clicks_topic, settings.topic_partitions),
            ],
            stopping=self._shutdown,
        )
        self._producing.set()
        try:
            rows = data.users(settings.data_config())
            users_sent = self._produce_users(rows)
            tally = _Tally()
            if not self._shutdown.requested:
                log.info("users produced", count=users_sent, topic=settings.users_topic)
                if settings.time_scale > 0:
                    self._produce_visits(rows, tally)
                else:
                    self._produce_clicks(rows, tally)
            self._producer.flush()
        finally:
            self._producing.clear()
        summary = RunSummary(
            users=users_sent,
            clicks=tally.clicks,
            unknown_user_clicks=tally.unknown,
            malformed=tally.malformed,
            seconds=round(self._clock() - started, 3),
            stopped=self._shutdown.requested,
        )
        log.info("generator done", **vars(summary))
        return summary

    def _produce_users(self, rows: Sequence[data.UserRow]) -> int:
        topic = self._settings.users_topic
        sent = 0
        records = data.user_records(rows, self._write_user)
        while not self._shutdown.requested:
            batch = [OutRecord(topic, r.key, r.value) for r in islice(records, USER_BATCH)]
            if not batch:
                break
            self._producer.send_all(batch)
            self._metrics.inc("users_produced", len(batch))
            sent += len(batch)
        self._producer.flush()
        return sent

    def _produce_clicks(self, rows: Sequence[data.UserRow], tally: _Tally) -> None:
        settings = self._settings
        stream = data.clicks(settings.data_config(), rows, self._write_click)
        pacer = Pacer(settings.rate, self._clock)
        last_flush = last_progress = self._clock()
        progress_mark = 0
        while not self._shutdown.requested:
            remaining = settings.clicks - tally.clicks if settings.clicks else pacer.batch_size
            if remaining <= 0:
                break
            wanted = min(pacer.batch_size, remaining)
            granted = pacer.grant(wanted)
            if granted == 0:
                self._shutdown.wait(pacer.wait_seconds(wanted))
                continue
            self._send_clicks(stream, granted, tally)
            now = self._clock()
            if now - last_flush >= FLUSH_SECONDS:
                self._producer.flush()
                last_flush = now
            if now - last_progress >= PROGRESS_SECONDS:
                log.info(
                    "clicks progress",
                    count=tally.clicks,
                    rate=round((tally.clicks - progress_mark) / (now - last_progress), 1),
                )
                last_progress, progress_mark = now, tally.clicks

    def _send_clicks(
        self, stream: Iterator[data.GeneratedClick], count: int, tally: _Tally
    ) -> None:
        topic = self._settings.clicks_topic
        batch = list(islice(stream, count))
        self._producer.send_all(OutRecord(topic, click.key, click.value) for click in batch)
        unknown = sum(1 for click in batch if click.kind is data.ClickKind.UNKNOWN)
        malformed = sum(1 for click in batch if click.kind is data.ClickKind.MALFORMED)
        tally.clicks += len(batch)
        tally.unknown += unknown
        tally.malformed += malformed
        self._metrics.inc("clicks_produced", len(batch))
        self._metrics.inc("unknown_user_clicks_produced", unknown)
        self._metrics.inc("malformed_produced", malformed)

    def _produce_visits(self, rows: Sequence[data.UserRow], tally: _Tally) -> None:
        """Each click when the simulated clock, `time_scale` times the wall clock since the
        start, reaches its event time; level changes to the users topic as they happen."""
        settings = self._settings
        start_ms = int(self._wall_clock() * 1000)
        started = self._clock()
        stream = visits(settings.data_config(), rows, start_ms, encode=self._write_click)
        upcoming: TimedClick | Upgrade = next(stream)
        last_flush = started
        while not self._shutdown.requested:
            if settings.clicks and tally.clicks >= settings.clicks:
                break
            now = self._clock()
            simulated_ms = start_ms + (now - started) * 1000 * settings.time_scale
            batch: list[OutRecord] = []
            clicks = 0
            while upcoming.event_ms <= simulated_ms and len(batch) < 1000:
                if isinstance(upcoming, Upgrade):
                    record = next(data.user_records([upcoming.user], self._write_user))
                    batch.append(OutRecord(settings.users_topic, record.key, record.value))
                    self._metrics.inc("level_changes_produced")
                else:
                    if settings.clicks and tally.clicks + clicks >= settings.clicks:
                        break
                    click = upcoming.click
                    batch.append(OutRecord(settings.clicks_topic, click.key, click.value))
                    clicks += 1
                upcoming = next(stream)
            if batch:
                self._producer.send_all(batch)
                tally.clicks += clicks
                self._metrics.inc("clicks_produced", clicks)
            else:
                wait_s = (upcoming.event_ms - simulated_ms) / 1000 / settings.time_scale
                self._shutdown.wait(min(max(wait_s, 0.001), 0.5))
            if now - last_flush >= FLUSH_SECONDS:
                self._producer.flush()
                last_flush = now
