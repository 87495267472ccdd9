"""Generator to RabbitMQ through the four real services on real brokers, checked against DuckDB
running the seed's SQL over the same inputs."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from tests.integration.conftest import Names, Pipeline
from tests.support.brokers import Brokers
from tests.support.collect import drain
from tests.support.oracle import Expectation, compare, expected_outcome, read_topic

pytestmark = pytest.mark.integration

GENERATED = {
    "GENERATOR_USERS": "400",
    "GENERATOR_CLICKS": "6000",
    "GENERATOR_RATE": "0",
    "GENERATOR_SEED": "7",
    "GENERATOR_UNKNOWN_USER_SHARE": "0.05",
    "GENERATOR_MALFORMED_SHARE": "0.02",
}


def produce_bad_users(brokers: Brokers, topic: str) -> list[bytes]:
    """User records off the contract; user-state must dead-letter each and keep going."""
    bad = [b"{not json", b'{"user_id": "k1", "name": 3, "level": "GOLD"}', b'["a", "list"]']
    producer = Producer({"bootstrap.servers": brokers.kafka})
    for index, value in enumerate(bad):
        producer.produce(topic, key=f"k{index}".encode(), value=value)
    assert producer.flush(30) == 0
    return bad


def wait_for_count(brokers: Brokers, topic: str, count: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    rows = read_topic(brokers.kafka, topic)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(1)
        rows = read_topic(brokers.kafka, topic)
    return rows


def check_side_outputs(brokers: Brokers, names: Names, expected: Expectation) -> tuple[int, int]:
    dead = wait_for_count(brokers, f"{names.clicks}.dlq", len(expected.invalid_clicks))
    assert {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"])) for r in dead
    } == expected.invalid_clicks
    assert all(
        r.headers["dlq.source.topic"] == names.clicks and r.headers["dlq.error"] for r in dead
    )
    unmatched = wait_for_count(brokers, f"{names.clicks}.unmatched", len(expected.unmatched_clicks))
    assert {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"]))
        for r in unmatched
    } == expected.unmatched_clicks
    return len(dead), len(unmatched)


def test_generated_clicks_reach_rabbitmq_exactly_as_the_seed_sql_says(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    user_state = pipeline.start("user-state")
    user_state.wait_ready()
    enricher = pipeline.start("enricher", USER_STATE_URL=user_state.url)
    bridge = pipeline.start("rabbit-bridge")
    enricher.wait_ready()
    bridge.wait_ready()
    generator = pipeline.start("generator", **GENERATED)
    assert generator.wait_exit() == 0, generator.log_tail()
    bad_users = produce_bad_users(brokers, names.users)

    expected = expected_outcome(
        read_topic(brokers.kafka, names.users), read_topic(brokers.kafka, names.clicks)
    )
    levels = {row[1] for row in expected.vip_rows}
    assert expected.invalid_clicks and expected.unmatched_clicks and levels, "dataset lacks a case"

    bodies = drain(brokers.rabbitmq, names.queue, sum(expected.vip_rows.values()))
    result = compare(expected.vip_rows, bodies)
    dead, unmatched = check_side_outputs(brokers, names, expected)
    summary = f"clicks={expected.clicks} {result.line()} dead_lettered={dead} unmatched={unmatched}"
    print(f"\nend-to-end: {summary}")
    assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()

    dead_users = wait_for_count(brokers, f"{names.users}.dlq", len(bad_users))
    assert sorted(r.value for r in dead_users) == sorted(bad_users)
    for service in (enricher, bridge, user_state):
        assert service.terminate() == 0, service.log_tail()
