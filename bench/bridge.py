"""Section 2: rabbit-bridge draining a preloaded VipAction topic into a quorum queue, against
RabbitMQ's PerfTest publishing the same number of messages of the same size, persistent, with
publisher confirms, to a quorum queue of the same broker.

Both are timed the same way: by the queue's depth (a passive declare, which asks the queue
itself), from the first message seen to the moment all are there.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pika
import pika.exceptions

from bench.common import (
    Run,
    attempt,
    create_topics,
    preload,
    say,
)
from bench.data import Data, vip_action_pairs
from bench.installs import perf_test_classpath
from bench.timing import (
    Throughput,
    broker_pids,
    exited_check,
    stop,
)
from bench.timing import watch_progress as watch
from tests.support.services import Service

TIMEOUT = 1800.0  # failure guard only


class QueueDepth:
    """Messages in a queue, 0 while it does not exist yet."""

    def __init__(self, url: str, queue: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        self._queue = queue

    def __call__(self) -> int:
        try:
            declared = self._channel.queue_declare(self._queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            self._channel = self._connection.channel()  # 404: not declared yet
            return 0
        return int(declared.method.message_count)

    def delete(self, exchange: str | None = None) -> None:
        self._channel.queue_delete(self._queue)
        if exchange:
            self._channel.exchange_delete(exchange)

    def close(self) -> None:
        self._connection.close()


def server_version(url: str) -> str:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        properties = connection._impl.server_properties
        version = properties.get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        connection.close()


def measure_bridge(run: Run, topic: str, total: int) -> Throughput:
    run.quiet("bridge")
    exchange, queue = run.name("bridge-x"), run.name("bridge-q")
    depth = QueueDepth(run.brokers.rabbitmq_url, queue)
    service = Service(
        "rabbit-bridge",
        {
            "KAFKA_BOOTSTRAP_SERVERS": run.brokers.bootstrap,
            "RABBITMQ_URL": run.brokers.rabbitmq_url,
            "VIP_ACTIONS_TOPIC": topic,
            "RABBITMQ_EXCHANGE": exchange,
            "RABBITMQ_QUEUE": queue,
            "CONSUMER_GROUP": run.name("bridge"),
        },
        run.log_dir,
        log_name="rabbit-bridge",
    )
    service.start()
    try:
        assert service.process is not None
        return watch(
            depth,
            total,
            pids={"rabbit-bridge": [service.process.pid], **broker_pids("rabbitmq", "kafka")},
            alive=service.check_alive,
            timeout=TIMEOUT,
            what="rabbit-bridge",
        )
    finally:
        service.terminate()
        depth.delete(exchange)
        depth.close()


def measure_perf_test(
    run: Run, total: int, size: int, confirm_window: int
) -> tuple[Throughput, str]:
    classpath = perf_test_classpath()
    run.quiet("perftest")
    exchange, queue = run.name("perftest-x"), run.name("perftest-q")
    depth = QueueDepth(run.brokers.rabbitmq_url, queue)
    log = run.log_dir / "perftest.log"
    command = ["java", "-cp", classpath, "com.rabbitmq.perf.PerfTest"]
    command += ["--uri", run.brokers.rabbitmq_url, "--id", run.name("perftest")]
    command += ["--producers", "1", "--consumers", "0", "--pmessages", str(total)]
    command += ["--size", str(size), "--flag", "persistent", "--confirm", str(confirm_window)]
    command += ["--quorum-queue", "--queue", queue, "--exchange", exchange, "--type", "topic"]
    command += ["--routing-key", "vip.checkout"]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=sink)
    try:
        result = watch(
            depth,
            total,
            pids={"perftest": [process.pid], **broker_pids("rabbitmq")},
            alive=lambda: None,
            timeout=TIMEOUT,
            what="perftest",
        )
        if process.wait(120) != 0:
            exited_check(process, log, "PerfTest")()
    finally:
        stop(process)
        depth.delete(exchange)
        depth.close()
    summary = re.findall(r"sending rate avg: \d+ msg/s", log.read_text(errors="replace"))
    return result, summary[-1] if summary else ""


def run_section(run: Run, data: Data, users: int, total: int) -> dict[str, Any]:
    topic = run.name("vip-action")
    create_topics(run.brokers, [topic])
    records = list(vip_action_pairs(data.users(users), total))
    size = round(sum(len(v) for _, v in records) / len(records))
    preload(run.brokers, topic, records)
    say(f"preloaded {total:,} VipActions ({size} bytes on average) into {topic}")
    # The bridge publishes a batch (BATCH_SIZE, 2,000) and waits for its confirms before the next.
    window = 2000
    results: dict[str, Any] = {"messages": total, "message_bytes": size, "confirm_window": window}

    def bridge() -> dict[str, Any]:
        timing = measure_bridge(run, topic, total)
        say(f"rabbit-bridge: {timing.rate:,.0f} msgs/s")
        return timing.as_dict()

    def perf_test() -> dict[str, Any]:
        timing, own_summary = measure_perf_test(run, total, size, window)
        say(f"PerfTest: {timing.rate:,.0f} msgs/s ({own_summary})")
        return {**timing.as_dict(), "own_summary": own_summary}

    attempt(results, "bridge", bridge)
    attempt(results, "perftest", perf_test)
    return results


_LATENCY = re.compile(
    r"consumer latency min/median/75th/95th/99th (\d+)/(\d+)/(\d+)/(\d+)/(\d+) µs"
)


def measure_perf_test_latency(run: Run, rate: int, size: int, seconds: float) -> dict[str, Any]:
    """RabbitMQ alone at the VipActions' rate: PerfTest with one producer (persistent, confirms)
    and one consumer on a quorum queue, its own publish-to-receive percentiles over the run, in
    ms. What the bridge hop of section 3 can be held to on this broker and disk."""
    classpath = perf_test_classpath()
    queue = run.name(f"perftest-latency-{rate}")
    log = run.log_dir / f"perftest-latency-{rate}.log"
    command = ["java", "-cp", classpath, "com.rabbitmq.perf.PerfTest"]
    command += ["--uri", run.brokers.rabbitmq_url, "--id", run.name("perftest-latency")]
    command += ["--producers", "1", "--consumers", "1", "--rate", str(rate)]
    command += ["--size", str(size), "--flag", "persistent", "--confirm", "50"]
    command += ["--quorum-queue", "--queue", queue, "--auto-delete", "true"]
    command += ["--time", str(round(seconds))]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=sink)
    try:
        if process.wait(seconds + 120) != 0:
            exited_check(process, log, "PerfTest")()
    finally:
        stop(process)
    found = _LATENCY.findall(log.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"PerfTest printed no latency summary (log {log})")
    _, p50, _, p95, p99 = (int(v) / 1000 for v in found[-1])  # the run's own summary
    return {"rate": rate, "seconds": seconds, "p50": p50, "p95": p95, "p99": p99}
