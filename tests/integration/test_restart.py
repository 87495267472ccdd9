"""SIGTERM the enricher and the bridge mid-stream, start them again: nothing expected is missing."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import Names, Pipeline
from tests.integration.test_end_to_end import check_side_outputs
from tests.support.brokers import Brokers
from tests.support.collect import drain
from tests.support.oracle import compare, expected_outcome, read_topic

pytestmark = pytest.mark.integration


def test_stopping_and_restarting_mid_stream_loses_nothing(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    user_state = pipeline.start("user-state")
    user_state.wait_ready()
    enricher = pipeline.start("enricher", USER_STATE_URL=user_state.url)
    bridge = pipeline.start("rabbit-bridge")
    enricher.wait_ready()
    bridge.wait_ready()
    generator = pipeline.start(
        "generator",
        GENERATOR_USERS="300",
        GENERATOR_CLICKS="8000",
        GENERATOR_RATE="800",
        GENERATOR_SEED="11",
        GENERATOR_UNKNOWN_USER_SHARE="0.03",
        GENERATOR_MALFORMED_SHARE="0.01",
    )
    time.sleep(4)  # mid-stream: the generator needs about 10 s for all clicks
    generator.check_alive()
    assert enricher.terminate() == 0, enricher.log_tail()
    assert bridge.terminate() == 0, bridge.log_tail()
    time.sleep(2)  # clicks keep coming while both are down
    enricher = pipeline.start("enricher", USER_STATE_URL=user_state.url)
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
