"""SIGTERM the enricher and the bridge mid-stream, start them again: nothing expected is missing."""

from __future__ import annotations

import json

import pytest

from tests.support.brokers import Brokers
from tests.support.collect import drain
from tests.support.groups import committed, end_offsets
from tests.support.oracle import compare, expected_outcome, read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.side_outputs import check_side_outputs
from tests.support.stream import wait_more_produced

pytestmark = pytest.mark.integration

CLICKS = 8000


def test_stopping_and_restarting_mid_stream_loses_nothing(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    stages = pipeline.start_stages()
    user_state, enricher, bridge = stages.user_state, stages.enricher, stages.bridge
    generator = pipeline.start(
        "generator",
        GENERATOR_USERS="300",
        GENERATOR_CLICKS=str(CLICKS),
        GENERATOR_RATE="800",
        GENERATOR_SEED="11",
        GENERATOR_UNKNOWN_USER_SHARE="0.03",
        GENERATOR_MALFORMED_SHARE="0.01",
    )
    # Mid-stream: both have done part of the work (the generator needs about 10 s for all of it).
    enricher.wait_metric("enricher_clicks_consumed_total", CLICKS * 0.3)
    bridge.wait_metric("rabbit_bridge_messages_confirmed_total", 1)
    generator.check_alive()
    assert enricher.terminate() == 0, enricher.log_tail()
    assert bridge.terminate() == 0, bridge.log_tail()
    # Clicks keep coming while both are down (about two seconds' worth).
    wait_more_produced(brokers.kafka, names.clicks, more=1600, total=CLICKS)
    enricher = pipeline.start_enricher(user_state)
    bridge = pipeline.start("rabbit-bridge")
    assert generator.wait_exit() == 0, generator.log_tail()

    expected = expected_outcome(
        read_topic(brokers.kafka, names.users), read_topic(brokers.kafka, names.clicks)
    )
    bodies = drain(brokers.rabbitmq, names.queue, sum(expected.vip_rows.values()))
    result = compare(expected.vip_rows, bodies)
    check_side_outputs(brokers, names, expected)
    print(f"\nrestart: {result.line()}")
    # SIGTERM lets both finish what they hold and commit it, so not even a duplicate is allowed.
    assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()
    for service in (enricher, bridge, user_state):
        assert service.terminate() == 0, service.log_tail()


def test_an_enricher_stopped_while_user_state_is_away_exits_0_and_keeps_its_click(
    brokers: Brokers, names: Names, pipeline: Pipeline, kafka_producer
) -> None:
    """Stopping the whole pipeline at once (Ctrl-C on `make run`) takes user-state away while the
    enricher still waits on a lookup: that is a clean stop, and the click is read again later."""
    stages = pipeline.start_stages(bridge=False)
    user_state, enricher = stages.user_state, stages.enricher
    assert user_state.terminate() == 0, user_state.log_tail()
    producer = kafka_producer()
    click = {"user_id": "u-1", "page": 1, "action": "view", "device": "d", "agent": "a"}
    producer.produce(names.clicks, key=b"u-1", value=json.dumps(click).encode())
    assert producer.flush(30) == 0
    # Read, and its lookup now retrying against the user-state that is gone.
    enricher.wait_metric("enricher_clicks_consumed_total", 1)
    assert enricher.terminate() == 0, enricher.log_tail()
    assert "stopped while waiting for user-state" in enricher.log_tail()
    partitions = sorted(end_offsets(brokers.kafka, names.clicks))
    offsets = committed(brokers.kafka, f"{names.run}.enricher", names.clicks, partitions)
    assert all(offset <= 0 for offset in offsets.values()), offsets  # negative: none committed
