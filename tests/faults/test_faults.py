"""Fault injection on real brokers: one fault per scenario, mid-stream, then nothing expected may
be missing from RabbitMQ. Duplicates and recovery time are measured and written to
docs/RELIABILITY.md (see tests/faults/report.py for what each number means)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pytest
from confluent_kafka import KafkaError, Message, Producer

from tests.faults.conftest import DedicatedBrokers, FaultPipeline
from tests.faults.harness import Scenario
from tests.faults.report import FAULT_AT, STATIC_MEMBER_ID, Row, SessionRow
from tests.support.eventually import eventually
from tests.support.groups import wait_members
from tests.support.oracle import read_topic
from tests.support.pipeline import Names
from tests.support.services import Service

pytestmark = pytest.mark.faults

DOWN_SECONDS = 3  # how long a stopped broker stays down: the fault itself, not a wait

Make = Callable[..., Scenario]


EXACTLY_ONCE = {"ENRICHER_DELIVERY": "exactly_once"}
MODES = [
    pytest.param("at-least-once", {}, id="at-least-once"),
    pytest.param("exactly-once", EXACTLY_ONCE, id="exactly-once"),
]


@pytest.fixture
def scenario(
    report: list[Row],
    brokers: DedicatedBrokers,
    names: Names,
    pipeline: FaultPipeline,
    request: pytest.FixtureRequest,
) -> Iterator[Make]:
    made: list[Scenario] = []

    def make(
        key: str,
        mode: str = "at-least-once",
        env: dict[str, str] | None = None,
        static_member: str | None = None,
    ) -> Scenario:
        row = Row(key, mode)
        report.append(row)
        made.append(Scenario(row, brokers, names, pipeline, env, static_member))
        return made[-1]

    yield make
    record_outcome([each.row for each in made], request)
    for each in made:
        if each.tap is not None:
            each.tap.close()


def record_outcome(rows: Sequence[Row | SessionRow], request: pytest.FixtureRequest) -> None:
    """After a scenario: passed or failed into its report rows, a failure's first line noted."""
    outcome = getattr(request.node, "rep_call", None)
    for row in rows:
        row.outcome = "passed" if outcome is not None and outcome.passed else "failed"
        if outcome is not None and outcome.failed:
            row.notes.append(f"failed: {failure_summary(outcome.longreprtext)}")


def failure_summary(text: str) -> str:
    """The assertion's first line, and the Kafka error a crashed service logged, if any."""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    summary = (lines[0] if lines else "see the test output")[:220].rstrip(";: ")
    kafka_error = re.search(r"KafkaError\{code=(\w+)", text)
    if kafka_error:
        summary += f" (KafkaError {kafka_error.group(1)})"
    return summary.replace("|", "/")


@pytest.mark.parametrize(("mode", "env"), MODES)
def test_kill_enricher(scenario: Make, mode: str, env: dict[str, str]) -> None:
    run = scenario("kill-enricher", mode, env, STATIC_MEMBER_ID).start(seed=101)
    run.wait_clicks(FAULT_AT)
    fault = time.time()
    run.pipeline.kill(run.enricher)
    run.enricher = run.start_enricher(log_name="enricher-2")
    ready = run.ready_after(run.enricher, fault)
    first = run.flowing(fault)
    run.row.notes.append(f"the new enricher was ready (user-state answered) after {ready} s")
    run.settle()
    run.measure(fault, first)
    run.judge()
    if mode != "at-least-once":
        duplicates = run.topic_duplicates()
        run.row.notes.append(f"{duplicates} duplicate event_ids on the vip-action topic")
        assert duplicates == 0
    run.stop()


def test_kill_bridge(scenario: Make) -> None:
    run = scenario("kill-bridge", static_member=STATIC_MEMBER_ID).start(seed=102)
    run.wait_clicks(FAULT_AT)
    fault = time.time()
    run.pipeline.kill(run.bridge)
    run.bridge = run.start_bridge(log_name="rabbit-bridge-2")
    ready = run.ready_after(run.bridge, fault)
    first = run.flowing(fault)
    run.row.notes.append(
        f"the new bridge was ready (RabbitMQ channel in confirm mode) after {ready} s"
    )
    run.settle()
    run.measure(fault, first)
    run.judge()
    run.stop()


def test_kill_user_state(scenario: Make) -> None:
    run = scenario("kill-user-state").start(seed=103)
    run.wait_clicks(FAULT_AT)
    fault = time.time()
    run.pipeline.kill(run.user_state)
    run.user_state = run.pipeline.start(
        "user-state", port=run.user_state.port, log_name="user-state-2"
    )
    ready = run.ready_after(run.user_state, fault)
    first = run.flowing(fault)
    run.row.notes.append(f"the new user-state had reloaded the users topic after {ready} s")
    run.settle()
    run.measure(fault, first)
    run.judge()
    log = run.enricher.log_path.read_text()
    assert "user-state not answering, retrying" in log, "the enricher never waited for user-state"
    run.row.notes.append("the enricher logged that it was retrying, and kept its batch")
    run.stop()


@pytest.mark.parametrize(("mode", "env"), MODES)
def test_restart_kafka(
    scenario: Make, brokers: DedicatedBrokers, mode: str, env: dict[str, str]
) -> None:
    run = scenario("restart-kafka", mode, env).start(seed=104)
    run.wait_clicks(FAULT_AT)
    fault, up = brokers.outage("kafka", DOWN_SECONDS)
    first = run.flowing(fault)
    run.row.notes.append(
        f"the broker answered again {up - fault:.1f} s after it stopped accepting connections"
        f" ({DOWN_SECONDS} s of it kept down)"
    )
    run.settle()
    run.measure(fault, first)
    run.judge()
    if mode != "at-least-once":
        duplicates = run.topic_duplicates()
        run.row.notes.append(f"{duplicates} duplicate event_ids on the vip-action topic")
        assert duplicates == 0
    run.stop()


def test_restart_rabbitmq(scenario: Make, brokers: DedicatedBrokers) -> None:
    run = scenario("restart-rabbitmq").start(seed=105)
    run.wait_clicks(FAULT_AT)
    fault, up = brokers.outage("rabbitmq", DOWN_SECONDS)
    first = run.flowing(fault)
    bridge_ready = run.ready_after(run.bridge, fault)
    run.row.notes.append(
        f"RabbitMQ answered again {up - fault:.1f} s after it stopped accepting connections"
        f" ({DOWN_SECONDS} s of it kept down), the bridge was ready again after {bridge_ready} s"
        " (it retries its connection with an exponential backoff while the broker is away)"
    )
    run.settle()
    run.measure(fault, first)
    run.judge()
    run.stop()


def test_scale_enricher(scenario: Make, brokers: DedicatedBrokers) -> None:
    # Two rebalances one after the other: at 800/s the traffic (15 s) can end before the second
    # on a busy machine, and then no fresh click can show the pipeline flowing after it.
    run = scenario("scale-enricher").start(seed=106, rate=300)
    group = f"{run.names.run}.enricher"
    check = run.pipeline.check_alive
    run.wait_clicks(FAULT_AT)
    up = time.time()
    extra = [run.start_enricher(log_name=f"enricher-{n}") for n in (2, 3)]
    wait_members(brokers.kafka, group, 3, check=check)
    up_stable = round(time.time() - up, 2)
    run.flowing(up)
    wait_consuming(extra, check)
    run.wait_clicks(run.clicks_produced() + 1_500)
    down = time.time()
    assert [run.pipeline.terminate(e) for e in extra] == [0, 0], extra[0].log_tail()
    wait_members(brokers.kafka, group, 1, check=check)
    down_stable = round(time.time() - down, 2)
    run.flowing(down)
    run.settle()
    run.row.recovery = f"{run.recovery(up, until=down):.1f} up, {run.recovery(down):.1f} down"
    run.row.notes.append(
        f"the group was stable with 3 members, each with partitions, {up_stable} s after the two"
        f" starts, with 1 member {down_stable} s after the two SIGTERMs (both exited 0)"
    )
    run.judge()
    run.stop()


def wait_consuming(
    replicas: list[Service], check: Callable[[], None], timeout: float = 120
) -> None:
    """Until every replica has consumed clicks of its own (its partitions really moved)."""

    def consuming() -> bool:
        check()
        return all(r.metric("enricher_clicks_consumed_total") > 0 for r in replicas)

    eventually(consuming, timeout=timeout, message="the new replicas consumed nothing")


BURST = 2_000


def malformed(index: int) -> tuple[bytes | None, bytes | None]:
    """(key, value) of an off-contract click, of eight kinds in turn."""
    key = f"burst-{index}".encode()
    fields = '"page": 7, "action": "view", "device": "mobile", "agent": "test"'
    kind = index % 8
    if kind == 0:
        return key, b"{not json"
    if kind == 1:
        return key, b'["not", "an", "object"]'
    if kind == 2:
        return key, b'{"page": 7, "action": "view", "device": "mobile", "agent": "test"}'
    if kind == 3:
        return (
            key,
            b'{"user_id": "u1", "page": "seven", "action": "view", "device": "m", "agent": "a"}',
        )
    if kind == 4:
        return key, None
    if kind == 5:
        return None, ('{"user_id": "u1", ' + fields + "}").encode()
    if kind == 6:
        return key, b"\xff\xfe not utf-8"
    if index % 200 == 7:  # a few oversized ones, not 140 MB of them
        return key, ('{"user_id": "u1", ' + fields[:-1] + "x" * 70_000 + '"}').encode()
    return key, ('{"user_id": "", ' + fields + "}").encode()


def produce_burst(producer: Producer, topic: str) -> list[tuple[int, int]]:
    """Produce the burst; the (partition, offset) of each record, as Kafka acknowledged it."""
    placed: list[tuple[int, int]] = []
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            placed.append((message.partition(), message.offset()))

    for index in range(BURST):
        key, value = malformed(index)
        producer.produce(topic, key=key, value=value, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]
    return placed


def test_malformed_burst(
    scenario: Make, brokers: DedicatedBrokers, kafka_producer: Callable[..., Producer]
) -> None:
    run = scenario("malformed-burst").start(seed=107)
    names = run.names
    run.wait_clicks(FAULT_AT)
    fault = time.time()
    burst = produce_burst(kafka_producer(**{"linger.ms": 5}), names.clicks)
    first = run.flowing(fault)
    run.settle()
    run.measure(fault, first)
    expected, _ = run.judge()
    assert set(burst) <= expected.invalid_clicks, "the oracle disagrees that the burst is bad"
    dead = {
        (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"])): r
        for r in read_topic(brokers.kafka, f"{names.clicks}.dlq")
        if r.headers.get("dlq.source.topic") == names.clicks
    }
    absent = [where for where in burst if where not in dead]
    assert not absent, f"{len(absent)} burst records not in click.dlq, e.g. {absent[:5]}"
    reasons = Counter(dead[where].headers.get("dlq.error", "").split(":")[0] for where in burst)
    assert "" not in reasons, "a dead letter without its reason"
    run.pipeline.check_alive()
    run.row.notes.append(
        f"all {BURST:,} burst records in click.dlq with their reason ("
        + ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items()))
        + "); no service restarted"
    )
    run.stop()
