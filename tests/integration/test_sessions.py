"""The sessions query over VipActions, on a real broker: every final row equals DuckDB's
sessionization of the same records (less those the enricher sent to `.late`), updates agree
with the finals, clicks behind the watermark land in `.late` with their reason, and bad records
in the DLQ."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from clickstream_common.contracts import parse_event_time
from confluent_kafka import Producer

from tests.support.eventually import eventually
from tests.support.oracle import read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.sessions import (
    MINUTE,
    SESSIONS_SQL,
    Action,
    expected_sessions,
    read_outcome,
    vip_actions,
)
from tests.support.stream import produced

START_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
PARTITIONS = 4


def _sentinels(producer: Producer, topic: str, event_ms: int) -> None:
    """One click far ahead on every partition: the watermark passes every real session."""
    for p in range(PARTITIONS):
        user = f"zz-sentinel-{p}"
        producer.produce(
            topic, Action(user, event_ms, "view", 0).value(), user.encode(), partition=p
        )


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_sessions_match_duckdb(
    delivery: str,
    brokers: Any,
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    source = new_topic(PARTITIONS, name=names.vip)
    output = f"{names.run}.vip-session"
    actions = vip_actions(seed=7, users=60, start_ms=START_MS)
    producer = kafka_producer()
    for action in actions:
        producer.produce(source, action.value(), action.user_id.encode())
    producer.produce(source, b"not json", b"vip-000")
    producer.produce(source, json.dumps({"user_id": "vip-001"}).encode(), b"vip-002")
    producer.flush(30)

    enricher = pipeline.start(
        "enricher",
        ENRICHER_QUERY=SESSIONS_SQL,
        CLICKS_STREAM="VipActions",
        CLICKS_TOPIC=source,
        OUTPUT_STREAM="VipSessions",
        OUTPUT_TOPIC=output,
        ENRICHER_DELIVERY=delivery,
        IDLE_TIMEOUT_MS="2000",
    )
    enricher.wait_ready()
    last = max(a.event_ms for a in actions)
    _sentinels(producer, source, last + 24 * 60 * MINUTE)
    producer.flush(30)
    expected_count = len(expected_sessions(actions))

    def finals_arrived() -> bool:
        return enricher.metric("enricher_windows_final_total") >= expected_count - 10

    eventually(finals_arrived, timeout=120, message=lambda: enricher.log_tail())

    # Now every real session is closed: clicks for them are late, whatever their partition.
    late = [
        Action("vip-003", START_MS + 5 * MINUTE, "view", 1),
        Action("vip-004", START_MS, "cart", 2),
    ]
    for action in late:
        producer.produce(source, action.value(), action.user_id.encode())
    producer.flush(30)
    eventually(
        lambda: produced(brokers.kafka, f"{source}.late") >= len(late),
        timeout=60,
        message="the late clicks never reached the .late topic",
    )
    late_rows = read_topic(brokers.kafka, f"{source}.late")
    late_sources = {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"]))
        for r in late_rows
    }
    assert all(r.headers["dlq.error"].startswith("late: event_time") for r in late_rows)

    applied = _applied(brokers.kafka, source, late_sources)
    expected = expected_sessions(applied)
    rows = [r for r in read_topic(brokers.kafka, output) if b"zz-sentinel" not in (r.key or b"")]
    outcome = read_outcome(rows)
    assert outcome.problems == []
    assert len(expected) > 150
    assert len(late_rows) >= len(late)
    finals = outcome.finals
    assert len(finals) == len(set(finals)), "a session was finalised twice"
    assert set(finals) == expected, (
        f"missing {sorted(expected - set(finals))[:5]}, unexpected {sorted(set(finals) - expected)[:5]}"
    )
    dlq = read_topic(brokers.kafka, f"{source}.dlq")
    reasons = sorted(r.headers["dlq.error"] for r in dlq)
    assert len(reasons) == 2
    assert reasons[0] == "key does not match user_id"
    assert reasons[1].startswith("not JSON")
    assert enricher.terminate() == 0


def _applied(bootstrap: str, topic: str, late: set[tuple[int, int]]) -> list[Action]:
    """What the enricher aggregated: every well-formed record of the input but the late ones
    and the sentinels, as read back from Kafka."""
    out = []
    for row in read_topic(bootstrap, topic):
        if (row.partition, row.offset) in late or row.value is None:
            continue
        try:
            obj = json.loads(row.value)
        except ValueError:
            continue
        if "event_time" not in obj or str(obj["user_id"]).startswith("zz-sentinel"):
            continue
        out.append(
            Action(obj["user_id"], parse_event_time(obj["event_time"]), obj["action"], obj["page"])
        )
    return out
