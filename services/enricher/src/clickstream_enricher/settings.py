"""The enricher's configuration, read once from the environment; the query is compiled here too,
so an unsupported construct stops the service at start."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from clickstream_common.settings import Env, FormatSettings, KafkaSettings, ObservabilitySettings

from clickstream_enricher.processor import JoinMode
from clickstream_enricher.query import (
    DEFAULT_QUERY,
    CompiledQuery,
    QueryError,
    StreamNames,
    compile_query,
)
from clickstream_enricher.windows.plan import AggregateQuery

Delivery = Literal["at_least_once", "exactly_once"]


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
    formats: FormatSettings
    clicks_topic: str
    vip_actions_topic: str
    dead_letter_topic: str
    unmatched_topic: str
    topic_partitions: int
    consumer_group: str
    # ENRICHER_DELIVERY: exactly_once writes each batch's outputs and offsets in one transaction.
    delivery: Delivery
    # Only used exactly once: stable per instance across restarts, unique among running ones.
    transactional_id: str
    user_state_url: str
    join_mode: JoinMode
    grace_seconds: float
    pending_capacity: int
    batch_size: int
    query_text: str
    query: CompiledQuery | AggregateQuery
    # Windowed queries only (README § Windowed queries).
    windows: WindowSettings

    @property
    def mode(self) -> Literal["join", "aggregate"]:
        """A row-by-row join, or a windowed aggregation (of one stream, or of the join)."""
        return "join" if isinstance(self.query, CompiledQuery) else "aggregate"

    @property
    def reads(self) -> Literal["clicks_and_users", "one_stream"]:
        """Whether the query looks its input's users up in user-state."""
        return "one_stream" if self.query.join is None else "clicks_and_users"

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics it reads and writes, but the changelog (made with its input's partitions)."""
        side = self.unmatched_topic if self.reads == "clicks_and_users" else None
        late = self.windows.late_topic if self.mode == "aggregate" else None
        return tuple(
            topic
            for topic in (
                self.clicks_topic,
                self.vip_actions_topic,
                self.dead_letter_topic,
                side,
                late,
            )
            if topic is not None
        )

    @property
    def as_of(self) -> bool:
        return self.join_mode == "as_of"

    @property
    def pipelined(self) -> bool:
        """At least once, the next batch's lookup overlaps this one's delivery; exactly once
        keeps one batch at a time (see ClickProcessor)."""
        return self.delivery == "at_least_once"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = Env(dict(environ)) if environ is not None else Env()
        clicks_topic = env.text("CLICKS_TOPIC", "click")
        streams = StreamNames(
            clicks=env.text("CLICKS_STREAM", "Clicks"),
            users=env.text("USERS_STREAM", "Users"),
            output=env.text("OUTPUT_STREAM", "VipActions"),
        )
        query_text = _query_text(env)
        query = _compile(env, query_text, streams)
        consumer_group = env.text("CONSUMER_GROUP", "enricher")
        join_mode: JoinMode = (
            "latest"
            if env.choice("JOIN_MODE", "as_of", ("as_of", "latest")) == "latest"
            else "as_of"
        )
        delivery: Delivery = (
            "exactly_once"
            if env.choice("ENRICHER_DELIVERY", "at_least_once", ("at_least_once", "exactly_once"))
            == "exactly_once"
            else "at_least_once"
        )
        output_topic = env.text("OUTPUT_TOPIC", env.text("VIP_ACTIONS_TOPIC", "vip-action"))
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8081),
            formats=FormatSettings.read(env),
            clicks_topic=clicks_topic,
            vip_actions_topic=output_topic,
            dead_letter_topic=env.text("CLICKS_DLQ_TOPIC", f"{clicks_topic}.dlq"),
            unmatched_topic=env.text("UNMATCHED_TOPIC", f"{clicks_topic}.unmatched"),
            topic_partitions=env.integer("TOPIC_PARTITIONS", 4, min=1, max=10_000),
            consumer_group=consumer_group,
            delivery=delivery,
            transactional_id=env.text(
                "TRANSACTIONAL_ID", f"{consumer_group}-{socket.gethostname()}"
            ),
            user_state_url=env.text("USER_STATE_URL", "http://127.0.0.1:8080"),
            join_mode=join_mode,
            grace_seconds=env.integer("JOIN_GRACE_MS", 5000, min=0, max=3_600_000) / 1000,
            pending_capacity=env.integer("PENDING_MAX_CLICKS", 100_000, min=1),
            batch_size=env.integer("BATCH_SIZE", 1000, min=1, max=100_000),
            query_text=query_text,
            query=query,  # type: ignore[arg-type]
            windows=WindowSettings.read(env, clicks_topic, consumer_group, _query_name(env, query)),
        )
        env.check()
        return settings


@dataclass(frozen=True)
class WindowSettings:
    allowed_lateness_ms: int
    idle_timeout_ms: int
    business_timezone: ZoneInfo
    late_topic: str
    changelog_topic: str

    @classmethod
    def read(
        cls, env: Env, input_topic: str, consumer_group: str, query_name: str
    ) -> WindowSettings:
        zone = env.time_zone("BUSINESS_TIMEZONE")
        return cls(
            allowed_lateness_ms=env.integer("ALLOWED_LATENESS_MS", 30_000, min=0, max=86_400_000),
            idle_timeout_ms=env.integer("IDLE_TIMEOUT_MS", 30_000, min=1, max=86_400_000),
            business_timezone=zone,
            late_topic=env.text("LATE_TOPIC", f"{input_topic}.late"),
            changelog_topic=env.text("CHANGELOG_TOPIC", f"{consumer_group}-{query_name}-changelog"),
        )


def _query_name(env: Env, query: CompiledQuery | AggregateQuery | None) -> str:
    """QUERY_NAME, else the query file's name (queries/vip-sessions.sql: vip-sessions), else the
    stream it inserts into."""
    path = env.optional_str("ENRICHER_QUERY_FILE")
    default = Path(path).stem if path else (query.target.lower() if query else "query")
    return env.text("QUERY_NAME", default)


def _query_text(env: Env) -> str:
    inline = env.optional_str("ENRICHER_QUERY")
    path = env.optional_str("ENRICHER_QUERY_FILE")
    if inline is not None and path is not None:
        env.problems.append("ENRICHER_QUERY and ENRICHER_QUERY_FILE are both set; choose one")
    if path is not None:
        try:
            return Path(path).read_text()
        except OSError as exc:
            env.problems.append(f"ENRICHER_QUERY_FILE={path!r} cannot be read: {exc.strerror}")
    return inline or DEFAULT_QUERY


def _compile(env: Env, text: str, streams: StreamNames) -> CompiledQuery | AggregateQuery | None:
    try:
        query = compile_query(text, streams)
    except QueryError as exc:
        env.problems.append(f"ENRICHER_QUERY: {exc}")
        return None
    if query.target.lower() != streams.output.lower():
        env.problems.append(
            f"ENRICHER_QUERY inserts into {query.target!r}, but OUTPUT_STREAM is {streams.output!r}"
        )
    return query
