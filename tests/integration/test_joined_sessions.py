"""A sessions query over Clicks JOIN Users, on a real broker, user-state and enricher, exactly
once: PLATINUM users' sessions, with users upgraded and downgraded mid-day, new users whose
earlier clicks predate them, users never seen, and out-of-order and late clicks. Every final row
equals DuckDB's: each click joined as of its time (ASOF JOIN), kept if PLATINUM, sessionized with
window functions; every click without a user at its time is on the unmatched topic."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from tests.support.eventually import eventually
from tests.support.oracle import KafkaRow, read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.sessions import (
    DAY,
    JOINED_SESSIONS_SQL,
    MINUTE,
    Action,
    as_of_platinum,
    expected_sessions,
    read_outcome,
    user_record,
    user_versions,
    vip_actions,
)
from tests.support.stream import produced

PARTITIONS = 4
USERS = 72
KNOWN = 66  # vip-066 and on never have a user record


def test_joined_sessions_match_duckdb_as_of(
    brokers: Any,
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    # Recent enough for the brokers' retention, all in the past.
    start_ms = (int(time.time() * 1000) - 2 * DAY) // MINUTE * MINUTE
    new_topic(PARTITIONS, name=names.users, compact=True)
    clicks = new_topic(PARTITIONS, name=names.clicks)
    output = f"{names.run}.vip-session"
    producer = kafka_producer()
    for user_id, level, valid_from in user_versions(start_ms, KNOWN):
        producer.produce(
            names.users, user_record(user_id, level), user_id.encode(), timestamp=valid_from
        )
    producer.flush(30)

    actions = vip_actions(seed=11, users=USERS, start_ms=start_ms)
    user_state = pipeline.start_user_state()
    enricher = pipeline.start_enricher(
        user_state,
        ENRICHER_QUERY=JOINED_SESSIONS_SQL,
        OUTPUT_STREAM="VipSessions",
        OUTPUT_TOPIC=output,
        ENRICHER_DELIVERY="exactly_once",
        IDLE_TIMEOUT_MS="2000",
        JOIN_GRACE_MS="1000",
    )
    enricher.wait_ready()
    for action in actions:
        producer.produce(clicks, action.click(), action.user_id.encode())
    # Far ahead on every partition, from users never seen: unmatched, yet input, so the
    # watermark passes every real session.
    last = max(a.event_ms for a in actions)
    for p in range(PARTITIONS):
        sentinel = Action(f"zz-sentinel-{p}", last + DAY, "view", 0)
        producer.produce(clicks, sentinel.click(), sentinel.user_id.encode(), partition=p)
    producer.flush(30)

    users = read_topic(brokers.kafka, names.users)
    platinum, _ = as_of_platinum(users, read_topic(brokers.kafka, clicks))
    expected_count = len(expected_sessions(platinum))
    eventually(
        lambda: enricher.metric("enricher_windows_final_total") >= expected_count,
        timeout=120,
        message=lambda: enricher.log_tail(),
    )

    # Every real session is closed now: PLATINUM users' clicks for them are late.
    late = [
        Action("vip-000", start_ms + 5 * MINUTE, "view", 1),
        Action("vip-006", start_ms, "cart", 2),
    ]
    for action in late:
        producer.produce(clicks, action.click(), action.user_id.encode())
    producer.flush(30)
    eventually(
        lambda: produced(brokers.kafka, f"{clicks}.late") >= len(late),
        timeout=60,
        message="the late clicks never reached the .late topic",
    )
    late_rows = read_topic(brokers.kafka, f"{clicks}.late")
    assert len(late_rows) == len(late)
    assert all(r.headers["dlq.error"].startswith("late: event_time") for r in late_rows)
    late_sources = {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"]))
        for r in late_rows
    }

    click_rows = [r for r in read_topic(brokers.kafka, clicks) if not _sentinel(r)]
    applied_rows = [r for r in click_rows if (r.partition, r.offset) not in late_sources]
    platinum, no_user = as_of_platinum(users, applied_rows)
    expected = expected_sessions(platinum)
    assert len(expected) > 100

    rows = read_topic(brokers.kafka, output)
    assert {json.loads(r.value or b"{}")["level"] for r in rows} == {"PLATINUM"}
    outcome = read_outcome(rows)
    assert outcome.problems == []
    finals = outcome.finals
    assert len(finals) == len(set(finals)), "a session was finalised twice"
    assert set(finals) == expected, (
        f"missing {sorted(expected - set(finals))[:5]}, "
        f"unexpected {sorted(set(finals) - expected)[:5]}"
    )

    unmatched = read_topic(brokers.kafka, f"{clicks}.unmatched")
    got = {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"]))
        for r in unmatched
        if not (r.key or b"").startswith(b"zz-sentinel")
    }
    want = {(applied_rows[i].partition, applied_rows[i].offset) for i in no_user}
    assert len(want) > 20
    assert got == want
    reasons = {r.headers["dlq.error"] for r in unmatched}
    assert reasons == {
        "user unknown after 1s grace",
        "user absent at event time (deleted, or first seen later)",
    }
    assert enricher.terminate() == 0


def _sentinel(row: KafkaRow) -> bool:
    return (row.key or b"").startswith(b"zz-sentinel")
