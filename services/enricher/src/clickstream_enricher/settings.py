"""The enricher's configuration, read once from the environment; the query is compiled here too,
so an unsupported construct stops the service at start."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from clickstream_common.settings import Env, KafkaSettings, ObservabilitySettings

from clickstream_enricher.processor import JoinMode
from clickstream_enricher.query import (
    DEFAULT_QUERY,
    CompiledQuery,
    QueryError,
    StreamNames,
    compile_query,
)

Delivery = Literal["at_least_once", "exactly_once"]


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings
    observability: ObservabilitySettings
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
    query: CompiledQuery

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
        consumer_group = env.text("CONSUMER_GROUP", "enricher")
        settings = cls(
            kafka=KafkaSettings.read(env),
            observability=ObservabilitySettings.read(env, default_port=8081),
            clicks_topic=clicks_topic,
            vip_actions_topic=env.text("VIP_ACTIONS_TOPIC", "vip-action"),
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
        )
        env.check()
        return settings


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


def _compile(env: Env, text: str, streams: StreamNames) -> CompiledQuery | None:
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
