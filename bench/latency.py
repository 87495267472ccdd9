"""Section 3: end-to-end latency through user-state, the enricher and rabbit-bridge.

Clicks are produced at a fixed rate with no `event_time` field, so each click's event time is
its Kafka record timestamp, taken when `produce` is called, and is carried into its VipAction's
`event_time`. A consumer in a process of its own (no GIL shared with the producer) reads the
bridge's queue and records receive time - event time for each VipAction. The first seconds are a
warm-up and not counted; the consumer stops once every expected VipAction has arrived.
"""

from __future__ import annotations

import multiprocessing
import time
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

import orjson
from clickstream_common.rabbit_consumer import QueueReader
from clickstream_generator.data import DataConfig, clicks

from bench.bridge import QueueDepth
from bench.common import Run, attempt, create_topics, parse_iso_millis, producer, say, summary_ms
from bench.data import Data
from bench.enricher import TIMEOUT, start_user_state
from tests.support.services import Service

WARMUP_SECONDS = 3.0


def consume(url: str, queue: str, expected: int, timeout: float, results: Connection) -> None:
    """Runs in a child process: (event ms, latency ms) of each VipAction, sent back at the end."""
    reader = QueueReader(url, queue)
    results.send("ready")
    samples: list[tuple[int, float]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(samples) < expected and time.monotonic() < deadline:
            received = reader.poll(1.0)
            if received is None:
                continue
            now_ms = time.time() * 1000
            event_ms = parse_iso_millis(orjson.loads(received.body)["event_time"])
            samples.append((event_ms, now_ms - event_ms))
    finally:
        reader.close()
        results.send(samples)


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
        time.sleep(0.0005)
    if out.flush(60):
        raise RuntimeError("latency clicks not acknowledged within 60s")
    return measured_from


def measure_rate(
    run: Run, data: Data, users: int, topic: str, queue: str, rate: int, seconds: float
) -> dict[str, Any]:
    rows = data.users(users)
    platinum = {r["user_id"].encode() for r in rows if r["level"] == "PLATINUM"}
    count = int(rate * (WARMUP_SECONDS + seconds))
    # A seed per rate: these clicks differ from the preloaded ones and from each other.
    generated = clicks(DataConfig(seed=rate, users=users, unknown_user_share=0.0), rows)
    records = [(c.key, c.value) for c in islice(generated, count)]
    expected = sum(1 for key, _ in records if key in platinum)
    run.quiet(f"latency {rate}/s")
    parent, child = multiprocessing.get_context("spawn").Pipe()
    consumer = multiprocessing.get_context("spawn").Process(
        target=consume,
        args=(run.brokers.rabbitmq_url, queue, expected, seconds + 300, child),
        daemon=True,
    )
    consumer.start()
    if not parent.poll(60) or parent.recv() != "ready":
        raise RuntimeError("latency consumer did not start")
    say(f"latency: {count:,} clicks at {rate:,}/s, {expected:,} VipActions expected")
    measured_from = paced(run, topic, records, rate)
    if not parent.poll(seconds + 360):
        raise TimeoutError("latency consumer sent nothing back")
    samples: list[tuple[int, float]] = parent.recv()
    consumer.join(30)
    measured = [latency for event_ms, latency in samples if event_ms >= measured_from]
    result = {
        "rate": rate,
        "seconds": seconds,
        "clicks": count,
        "expected": expected,
        "received": len(samples),
        **summary_ms(measured),
    }
    say(f"latency at {rate}/s: p50 {result['p50']} ms, p99 {result['p99']} ms")
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
                lambda r=rate: measure_rate(run, data, users, clicks_topic, queue, r, seconds),
            )
            results["rates"].append({"rate": rate, **one[f"latency at {rate}/s"]})
    finally:
        for service in (bridge, enricher, user_state):
            service.terminate()
        cleanup = QueueDepth(run.brokers.rabbitmq_url, queue)
        cleanup.delete(exchange)
        cleanup.close()
    return results
