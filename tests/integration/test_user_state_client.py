"""The enricher's user-state client against a real user-state: a lookup sent ahead is answered
when read, in order with the next, and one whose user-state died meanwhile is asked again."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import orjson
import pytest
from clickstream_common.lifecycle import Shutdown
from clickstream_enricher.user_state_client import UserStateClient
from confluent_kafka import Producer

from tests.support.pipeline import Names, Pipeline

pytestmark = pytest.mark.integration

# Record timestamps within the broker's retention (7 days): Kafka deletes a segment whose
# newest record is older, at its first check 30 s after it starts and every 5 min after, and a
# fixed 2023 T0 made user-state load an emptied topic when a check fell inside the test.
T0 = int(time.time() * 1000) - 3_600_000


def levels(matches: list) -> list[str | None]:
    return [m.user["level"] if m.user is not None else m.found.value for m in matches]


def test_lookups_sent_ahead_are_answered_in_order_and_again_after_a_restart(
    names: Names, pipeline: Pipeline, kafka_producer: Callable[..., Producer]
) -> None:
    producer = kafka_producer()
    for user_id, level in [("a", "GOLD"), ("b", "PLATINUM")]:
        value = orjson.dumps({"user_id": user_id, "name": user_id.upper(), "level": level})
        producer.produce(names.users, key=user_id.encode(), value=value, timestamp=T0)
    assert producer.flush(30) == 0
    service = pipeline.start_user_state()
    client = UserStateClient(service.url, Shutdown())
    try:
        client.wait_ready()
        first = client.start([("a", T0 + 1), ("zz", None)])
        second = client.start([("b", None), ("a", T0 - 1)])  # reads the first answer, then sends
        assert levels(second.result()) == ["PLATINUM", "absent"]
        assert levels(first.result()) == ["GOLD", "unknown"]
        assert levels(first.result()) == ["GOLD", "unknown"]  # read once, kept

        # Sent to a user-state that dies before it answers (stopped first, so it cannot): the
        # answer is asked for again from its replacement (on the same port), once it is back.
        assert service.process is not None
        os.kill(service.process.pid, signal.SIGSTOP)
        sent = client.start([("b", T0 + 5)])
        service.kill()
        replacement = threading.Timer(
            1.0, lambda: pipeline.start("user-state", port=service.port, log_name="us-2")
        )
        replacement.start()
        assert levels(sent.result()) == ["PLATINUM"]
        assert levels(client.lookup([("a", None)])) == ["GOLD"]
    finally:
        client.close()
