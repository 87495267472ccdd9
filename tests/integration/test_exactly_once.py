"""The enricher's exactly-once mode (ENRICHER_DELIVERY=exactly_once) on the real broker, and the
replay determinism and join modes it rests on."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.eventually import eventually
from tests.support.groups import end_offsets, wait_committed
from tests.support.oracle import KafkaRow, compare, expected_outcome, read_topic
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service
from tests.support.side_outputs import check_side_outputs
from tests.support.stream import wait_more_produced

pytestmark = pytest.mark.integration

EXACTLY_ONCE = {"ENRICHER_DELIVERY": "exactly_once"}
CLICKS = 8000


def wait_all_committed(
    brokers: Brokers, group: str, topic: str, service: Service, timeout: float = 150
) -> None:
    """Until the group has committed every partition of `topic` to its end: each click's
    outputs are then committed too (exactly once, in the same transactions)."""
    ends = {p: end for p, end in end_offsets(brokers.kafka, topic).items() if end > 0}
    if ends:
        wait_committed(brokers.kafka, group, topic, ends, timeout, check=service.check_alive)


def source_keys(rows: list[KafkaRow]) -> list[tuple[int, int]]:
    return [
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"])) for r in rows
    ]


def reasons(rows: list[KafkaRow]) -> list[tuple[tuple[int, int], str]]:
    return sorted(zip(source_keys(rows), (r.headers["dlq.error"] for r in rows), strict=True))


def test_exactly_once_after_kill_9_mid_stream_has_no_duplicate_committed_records(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    stages = pipeline.start_stages(bridge=False, enricher_env=EXACTLY_ONCE)
    user_state, enricher = stages.user_state, stages.enricher
    generator = pipeline.start(
        "generator",
        GENERATOR_USERS="300",
        GENERATOR_CLICKS=str(CLICKS),
        GENERATOR_RATE="800",
        GENERATOR_SEED="11",
        GENERATOR_UNKNOWN_USER_SHARE="0.03",
        GENERATOR_MALFORMED_SHARE="0.01",
    )
    # Mid-stream: the generator needs about 10 s; unknown users' clicks are held.
    enricher.wait_metric("enricher_clicks_consumed_total", CLICKS * 0.4)
    generator.check_alive()
    assert enricher.process is not None
    enricher.process.kill()  # kill -9: no drain, no commit, a transaction possibly open
    enricher.process.wait()
    # Same group, same host: the same transactional.id, so init_transactions aborts what the
    # killed one left open. (Its partitions come back once its group session times out.)
    enricher = pipeline.start_enricher(user_state, **EXACTLY_ONCE)
    assert generator.wait_exit() == 0, generator.log_tail()

    expected = expected_outcome(
        read_topic(brokers.kafka, names.users), read_topic(brokers.kafka, names.clicks)
    )
    wait_all_committed(brokers, f"{names.run}.enricher", names.clicks, enricher)
    committed = read_topic(brokers.kafka, names.vip)
    result = compare(expected.vip_rows, [r.value for r in committed if r.value is not None])
    dead, unmatched = check_side_outputs(brokers, names, expected)
    everything = read_topic(brokers.kafka, names.vip, isolation_level="read_uncommitted")
    skipped = enricher.metric("enricher_clicks_already_done_total")
    print(
        f"\nexactly once after kill -9: {result.line()} read_uncommitted={len(everything)}"
        f" (aborted {len(everything) - len(committed)}) skipped_on_resume={skipped:g}"
    )
    assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()
    assert len(everything) >= len(committed)
    # The side outputs are in the same transactions: no duplicates there either.
    for topic in (f"{names.clicks}.dlq", f"{names.clicks}.unmatched"):
        keys = source_keys(read_topic(brokers.kafka, topic))
        assert len(keys) == len(set(keys)), topic
    assert (dead, unmatched) == (len(expected.invalid_clicks), len(expected.unmatched_clicks))
    # The restart resumed past clicks the killed one held: their finished neighbours were skipped.
    assert skipped > 0
    for service in (enricher, user_state):
        assert service.terminate() == 0, service.log_tail()


def stopped_metrics(service: Service) -> dict[str, float]:
    for line in reversed(service.log_path.read_text().splitlines()):
        entry = json.loads(line)
        if entry.get("event") == "enricher stopped":
            return {k: v for k, v in entry.items() if isinstance(v, int | float)}
    raise AssertionError(f"no 'enricher stopped' line; log:\n{service.log_tail()}")


def test_exactly_once_through_rebalances_has_no_duplicate_committed_records(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    """A second replica joins mid-stream (cooperative rebalance: the first gives up partitions
    with clicks held), then leaves on SIGTERM. Each has its own transactional.id."""
    stages = pipeline.start_stages(
        bridge=False, enricher_env={"TRANSACTIONAL_ID": f"{names.run}-a", **EXACTLY_ONCE}
    )
    user_state, first = stages.user_state, stages.enricher
    generator = pipeline.start(
        "generator",
        GENERATOR_USERS="300",
        GENERATOR_CLICKS=str(CLICKS),
        GENERATOR_RATE="800",
        GENERATOR_SEED="5",
        GENERATOR_UNKNOWN_USER_SHARE="0.03",
    )
    # Mid-stream: the first replica holds clicks of every partition when the second joins.
    first.wait_metric("enricher_clicks_consumed_total", CLICKS * 0.3)
    second = pipeline.start_enricher(user_state, TRANSACTIONAL_ID=f"{names.run}-b", **EXACTLY_ONCE)
    second.wait_ready()
    # Not SIGTERM while it is still joining: the partitions being moved to it then wait out
    # the group's session timeout (45 s) before anyone reads them (librdkafka 2.16).
    eventually(
        lambda: second.metric("enricher_clicks_consumed_total") > 0,
        timeout=30,
        message="the second replica was given no partition",
    )
    # It works its partitions while clicks keep coming (about a second's worth) before it leaves.
    wait_more_produced(brokers.kafka, names.clicks, more=800, total=CLICKS)
    assert second.terminate() == 0, second.log_tail()
    assert generator.wait_exit() == 0, generator.log_tail()

    expected = expected_outcome(
        read_topic(brokers.kafka, names.users), read_topic(brokers.kafka, names.clicks)
    )
    wait_all_committed(brokers, f"{names.run}.enricher", names.clicks, first)
    result = compare(
        expected.vip_rows, [r.value for r in read_topic(brokers.kafka, names.vip) if r.value]
    )
    took_over = stopped_metrics(second)
    print(f"\nexactly once through rebalances: {result.line()} second={took_over}")
    assert (result.missing, result.unexpected, result.duplicated) == (0, 0, 0), result.line()
    assert took_over["clicks_consumed"] > 0 and took_over["clicks_already_done"] > 0
    for service in (first, user_state):
        assert service.terminate() == 0, service.log_tail()


def test_replay_with_a_new_group_writes_the_same_vip_actions(
    brokers: Brokers, names: Names, pipeline: Pipeline
) -> None:
    stages = pipeline.start_stages(bridge=False)
    user_state, first = stages.user_state, stages.enricher
    generator = pipeline.start(
        "generator",
        GENERATOR_USERS="300",
        GENERATOR_CLICKS="4000",
        GENERATOR_RATE="0",
        GENERATOR_SEED="23",
        GENERATOR_UNKNOWN_USER_SHARE="0.05",
        GENERATOR_MALFORMED_SHARE="0.02",
    )
    assert generator.wait_exit() == 0, generator.log_tail()
    wait_all_committed(brokers, f"{names.run}.enricher", names.clicks, first)

    replay_topics = {
        "VIP_ACTIONS_TOPIC": f"{names.vip}.replay",
        "CLICKS_DLQ_TOPIC": f"{names.clicks}.replay.dlq",
        "UNMATCHED_TOPIC": f"{names.clicks}.replay.unmatched",
    }
    replay = pipeline.start_enricher(
        user_state,
        CONSUMER_GROUP=f"{names.run}.replay",
        **replay_topics,
        **EXACTLY_ONCE,
    )
    wait_all_committed(brokers, f"{names.run}.replay", names.clicks, replay)

    original = read_topic(brokers.kafka, names.vip)
    replayed = read_topic(brokers.kafka, replay_topics["VIP_ACTIONS_TOPIC"])
    by_id = {json.loads(r.value or b"")["event_id"]: r.value for r in original}
    again = {json.loads(r.value or b"")["event_id"]: r.value for r in replayed}
    print(f"\nreplay: {len(original)} VipActions, then {len(replayed)} on replay")
    assert original and len(by_id) == len(original) and len(again) == len(replayed)
    assert again == by_id  # same event_ids, byte-identical bodies
    assert Counter(r.key for r in replayed) == Counter(r.key for r in original)
    for side, replay_side in (
        (f"{names.clicks}.unmatched", replay_topics["UNMATCHED_TOPIC"]),
        (f"{names.clicks}.dlq", replay_topics["CLICKS_DLQ_TOPIC"]),
    ):
        a, b = read_topic(brokers.kafka, side), read_topic(brokers.kafka, replay_side)
        assert a and reasons(a) == reasons(b), side
    for service in (first, replay, user_state):
        assert service.terminate() == 0, service.log_tail()


def test_as_of_ignores_a_later_promotion_and_latest_does_not(
    brokers: Brokers,
    names: Names,
    pipeline: Pipeline,
    new_topic: Callable[..., str],
    kafka_producer: Callable[..., Producer],
) -> None:
    new_topic(4, name=names.users, compact=True)
    new_topic(4, name=names.clicks)
    now = int(time.time() * 1000)
    producer = kafka_producer()

    def user(user_id: str, level: str, at: int) -> None:
        value = {"user_id": user_id, "name": user_id.title(), "level": level}
        producer.produce(names.users, key=user_id.encode(), value=orjson.dumps(value), timestamp=at)

    def click(user_id: str, page: int, at: int) -> None:
        value = {"user_id": user_id, "page": page, "action": "view", "device": "d", "agent": "a"}
        value["event_time"] = at
        producer.produce(names.clicks, key=user_id.encode(), value=orjson.dumps(value))

    user("riser", "GOLD", now - 60_000)
    user("riser", "PLATINUM", now - 30_000)  # promoted after pages 1 and 2 were clicked
    user("always", "PLATINUM", now - 60_000)
    click("riser", 1, now - 45_000)
    click("riser", 2, now - 40_000)
    click("riser", 3, now - 20_000)
    click("always", 4, now - 45_000)
    assert producer.flush(30) == 0

    user_state = pipeline.start_user_state()
    pages: dict[str, set[int]] = {}
    for mode in ("as_of", "latest"):
        topic = f"{names.vip}.{mode}"
        service = pipeline.start_enricher(
            user_state,
            JOIN_MODE=mode,
            CONSUMER_GROUP=f"{names.run}.{mode}",
            VIP_ACTIONS_TOPIC=topic,
            CLICKS_DLQ_TOPIC=f"{topic}.dlq",
            UNMATCHED_TOPIC=f"{topic}.unmatched",
            **EXACTLY_ONCE,
        )
        wait_all_committed(brokers, f"{names.run}.{mode}", names.clicks, service)
        pages[mode] = {json.loads(r.value or b"")["page"] for r in read_topic(brokers.kafka, topic)}
        assert service.terminate() == 0, service.log_tail()
    assert pages == {"as_of": {3, 4}, "latest": {1, 2, 3, 4}}
    assert user_state.terminate() == 0, user_state.log_tail()
