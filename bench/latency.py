"""Section 3: end-to-end latency through user-state, the enricher and rabbit-bridge.

Clicks are produced at a fixed rate with no `event_time` field, so each click's event time is
its Kafka record timestamp, taken when `produce` is called, and is carried into its VipAction's
`event_time`. A consumer in a process of its own (no GIL shared with the producer) reads the
bridge's queue and records receive time - event time for each VipAction. The first seconds are a
warm-up and not counted; the consumer stops once every expected VipAction has arrived.

Per hop, another process tails the VipAction topic (a plain consumer), so each
VipAction, matched by event id, splits into: click produce -> VipAction's Kafka timestamp (the
enricher's `produce` call), -> readable on Kafka (its produce linger and ack, then a fetch), ->
received from RabbitMQ (the bridge's fetch, publish and confirm, the queue, the consumer).
"""

from __future__ import annotations

import multiprocessing
import time
from functools import partial
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

import orjson
import pika
from clickstream_generator.data import DataConfig, clicks
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from bench.bridge import QueueDepth, measure_perf_test_latency
from bench.common import (
    PARTITIONS,
    Run,
    attempt,
    create_topics,
    parse_iso_millis,
    percentile,
    producer,
    say,
    summary_ms,
)
from bench.data import Data
from bench.enricher import start_user_state
from bench.timing import TIMEOUT
from tests.support.services import Service

WARMUP_SECONDS = 3.0
# What PerfTest publishes for RabbitMQ alone: about a VipAction's size (section 2 measures 166 B).
VIP_ACTION_BYTES = 170


# event id -> (event ms, received ms): what the RabbitMQ consumer saw.
Received = dict[str, tuple[int, float]]
# event id -> (VipAction Kafka timestamp ms, read from Kafka ms): what the topic's tail saw.
Tailed = dict[str, tuple[int, float]]

HOPS = ("enricher", "kafka", "bridge")


def consume(url: str, queue: str, expected: int, timeout: float, results: Connection) -> None:
    """Runs in a child process: each VipAction's event and receive time, sent back at the end.

    A callback per delivery and one multiple-ack per turn of the connection: the measuring tool
    should cost the 2-core machine as little as it can (a `QueueReader.poll` per message, with an
    ack each, took 0.16 of a core at 500 messages/s, as much as user-state; this, 0.11-0.14).
    """
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    samples: Received = {}
    last_tag = 0

    def on_message(_channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        nonlocal last_tag
        now_ms = time.time() * 1000
        value = orjson.loads(body)
        samples[value["event_id"]] = (parse_iso_millis(value["event_time"]), now_ms)
        last_tag = method.delivery_tag

    channel.basic_consume(queue, on_message)
    results.send("ready")
    deadline = time.monotonic() + timeout
    acked = 0
    try:
        while len(samples) < expected and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
            if last_tag > acked:
                channel.basic_ack(last_tag, multiple=True)
                acked = last_tag
    finally:
        connection.close()
        results.send(samples)


def tail(bootstrap: str, topic: str, expected: int, timeout: float, results: Connection) -> None:
    """Runs in a child process: each VipAction's Kafka timestamp and when it became readable."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-tail",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(PARTITIONS)])
    while not consumer.assignment():  # pragma: no cover - assign is immediate
        time.sleep(0.01)
    consumer.poll(0.5)  # the end offsets are resolved before the first click is produced
    results.send("ready")
    samples: Tailed = {}
    deadline = time.monotonic() + timeout
    try:
        while len(samples) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            now_ms = time.time() * 1000
            value = orjson.loads(message.value() or b"{}")
            samples[value["event_id"]] = (message.timestamp()[1], now_ms)
    finally:
        consumer.close()
        results.send(samples)


def hops(received: Received, tailed: Tailed, measured_from: float) -> dict[str, list[float]]:
    """Each timed VipAction's latency split at its Kafka timestamp and at its read from Kafka."""
    split: dict[str, list[float]] = {hop: [] for hop in HOPS}
    for event_id, (event_ms, received_ms) in received.items():
        if event_ms < measured_from or event_id not in tailed:
            continue
        kafka_ms, read_ms = tailed[event_id]
        split["enricher"].append(kafka_ms - event_ms)
        split["kafka"].append(read_ms - kafka_ms)
        split["bridge"].append(received_ms - read_ms)
    return split


def percentiles(values: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q), 1) for q in (50, 90, 99)}


def paced(run: Run, topic: str, records: list[tuple[bytes, bytes]], rate: int) -> float:
    """Produce at `rate` per second; returns the wall time (ms) at which the warm-up ended."""
    out = producer(run.brokers, **{"linger.ms": 5})  # as the generator produces
    warmup = int(WARMUP_SECONDS * rate)
    measured_from = 0.0
    started = time.monotonic()
    sent = 0
    while sent < len(records):
        due = min(len(records), int((time.monotonic() - started) * rate) + 1)
        while sent < due:
            key, value = records[sent]
            out.produce(topic, value=value, key=key)
            sent += 1
            if sent == warmup:
                measured_from = time.time() * 1000
        out.poll(0)
        time.sleep(0.001)  # a few clicks a wake-up: every wake-up costs the 2-core machine
    if out.flush(60):
        raise RuntimeError("latency clicks not acknowledged within 60s")
    return measured_from


def measure_rate(
    run: Run,
    data: Data,
    users: int,
    topics: tuple[str, str],
    queue: str,
    rate: int,
    seconds: float,
) -> dict[str, Any]:
    topic, vip_topic = topics
    rows = data.users(users)
    platinum = {r["user_id"].encode() for r in rows if r["level"] == "PLATINUM"}
    count = int(rate * (WARMUP_SECONDS + seconds))
    # A seed per rate: these clicks differ from the preloaded ones and from each other.
    generated = clicks(DataConfig(seed=rate, users=users, unknown_user_share=0.0), rows)
    records = [(c.key, c.value) for c in islice(generated, count)]
    expected = sum(1 for key, _ in records if key in platinum)
    run.quiet(f"latency {rate}/s")
    spawn = multiprocessing.get_context("spawn")
    pipes = {}
    for name, target, where in (
        ("consumer", consume, (run.brokers.rabbitmq_url, queue)),
        ("tail", tail, (run.brokers.bootstrap, vip_topic)),
    ):
        parent, child = spawn.Pipe()
        spawn.Process(
            target=target, args=(*where, expected, seconds + 300, child), daemon=True
        ).start()
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError(f"latency {name} did not start")
        pipes[name] = parent
    say(f"latency: {count:,} clicks at {rate:,}/s, {expected:,} VipActions expected")
    measured_from = paced(run, topic, records, rate)
    for name, parent in pipes.items():
        if not parent.poll(seconds + 360):
            raise TimeoutError(f"latency {name} sent nothing back")
    received: Received = pipes["consumer"].recv()
    tailed: Tailed = pipes["tail"].recv()
    measured = [
        received_ms - event_ms
        for event_ms, received_ms in received.values()
        if event_ms >= measured_from
    ]
    split = {hop: percentiles(v) for hop, v in hops(received, tailed, measured_from).items()}
    result: dict[str, Any] = {
        "rate": rate,
        "seconds": seconds,
        "clicks": count,
        "expected": expected,
        "received": len(received),
        **summary_ms(measured),
        "hops": split,
    }
    say(f"latency at {rate}/s: p50 {result['p50']} ms, p99 {result['p99']} ms")
    for hop, shares in split.items():
        say(f"  {hop:>8}: " + ", ".join(f"{q} {v} ms" for q, v in shares.items()))
    return result


def run_section(
    run: Run, data: Data, users: int, rates: list[int], seconds: float
) -> dict[str, Any]:
    users_topic = data.users_topic(users)
    clicks_topic, vip_topic = run.name("latency-click"), run.name("latency-vip-action")
    create_topics(run.brokers, [clicks_topic, vip_topic])
    exchange, queue = run.name("latency-x"), run.name("latency-q")
    user_state = start_user_state(run, users_topic, "user-state-latency")
    common = {"KAFKA_BOOTSTRAP_SERVERS": run.brokers.bootstrap, "VIP_ACTIONS_TOPIC": vip_topic}
    enricher = Service(
        "enricher",
        {
            **common,
            "CLICKS_TOPIC": clicks_topic,
            "CONSUMER_GROUP": run.name("latency-enricher"),
            "USER_STATE_URL": user_state.url,
        },
        run.log_dir,
        log_name="enricher-latency",
    )
    bridge = Service(
        "rabbit-bridge",
        {
            **common,
            "RABBITMQ_URL": run.brokers.rabbitmq_url,
            "RABBITMQ_EXCHANGE": exchange,
            "RABBITMQ_QUEUE": queue,
            "CONSUMER_GROUP": run.name("latency-bridge"),
        },
        run.log_dir,
        log_name="rabbit-bridge-latency",
    )
    results: dict[str, Any] = {"users": users, "warmup_seconds": WARMUP_SECONDS, "rates": []}
    try:
        for service in (enricher, bridge):
            service.start()
            service.wait_ready(timeout=TIMEOUT)
        for rate in rates:
            one: dict[str, Any] = {}
            attempt(
                one,
                f"latency at {rate}/s",
                lambda r=rate: measure_rate(
                    run, data, users, (clicks_topic, vip_topic), queue, r, seconds
                ),
            )
            measured = one[f"latency at {rate}/s"]
            if "error" not in measured:
                # RabbitMQ alone, at the rate the bridge published at (the PLATINUM share)
                vip_rate = max(1, round(rate * measured["expected"] / measured["clicks"]))
                attempt(
                    measured,
                    "rabbitmq_alone",
                    partial(measure_perf_test_latency, run, vip_rate, VIP_ACTION_BYTES, seconds),
                )
            results["rates"].append({"rate": rate, **measured})
    finally:
        for service in (bridge, enricher, user_state):
            service.terminate()
        cleanup = QueueDepth(run.brokers.rabbitmq_url, queue)
        cleanup.delete(exchange)
        cleanup.close()
    return results
