"""Generator to RabbitMQ through the four real services on real brokers, checked against DuckDB
running the seed's SQL over the same inputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.collect import drain
from tests.support.oracle import compare, expected_outcome, read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.side_outputs import check_side_outputs, wait_for_count

pytestmark = pytest.mark.integration

GENERATED = {
    "GENERATOR_USERS": "400",
    "GENERATOR_CLICKS": "6000",
    "GENERATOR_RATE": "0",
    "GENERATOR_SEED": "7",
    "GENERATOR_UNKNOWN_USER_SHARE": "0.05",
    "GENERATOR_MALFORMED_SHARE": "0.02",
}


def produce_bad_users(producer: Producer, topic: str) -> list[bytes]:
    """User records off the contract; user-state must dead-letter each and keep going."""
    bad = [b"{not json", b'{"user_id": "k1", "name": 3, "level": "GOLD"}', b'["a", "list"]']
    for index, value in enumerate(bad):
        producer.produce(topic, key=f"k{index}".encode(), value=value)
    assert producer.flush(30) == 0
    return bad


def test_generated_clicks_reach_rabbitmq_exactly_as_the_seed_sql_says(
    brokers: Brokers,
    names: Names,
    pipeline: Pipeline,
    kafka_producer: Callable[..., Producer],
) -> None:
    stages = pipeline.start_stages()
    generator = pipeline.start("generator", **GENERATED)
    assert generator.wait_exit() == 0, generator.log_tail()
    bad_users = produce_bad_users(kafka_producer(), names.users)

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
    for service in (stages.enricher, stages.bridge, stages.user_state):
        assert service.terminate() == 0, service.log_tail()
