"""What every benchmark shares: broker addresses, fresh names, a quiet machine, Kafka data and
small statistics. Timing a consumer is bench/timing.py."""

from __future__ import annotations

import calendar
import math
import os
import re
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local" / "bench"
PARTITIONS = 4


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Brokers:
    bootstrap: str
    rabbitmq_url: str
    registry_url: str = "http://127.0.0.1:8181/apis/ccompat/v7"

    @classmethod
    def from_env(cls) -> Brokers:
        return cls(
            bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            rabbitmq_url=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            registry_url=os.environ.get(
                "SCHEMA_REGISTRY_URL", "http://127.0.0.1:8181/apis/ccompat/v7"
            ),
        )

    def avro_env(self) -> dict[str, str]:
        """What a service needs to read and write Avro (VALUE_FORMAT=avro)."""
        return {"VALUE_FORMAT": "avro", "SCHEMA_REGISTRY_URL": self.registry_url}


@dataclass
class Run:
    """One `make bench` run: its id prefixes every topic, group, exchange and queue it makes."""

    brokers: Brokers
    max_load: float
    load_wait: float
    run_id: str = field(
        default_factory=lambda: f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    )
    loads: dict[str, float] = field(default_factory=dict)

    def name(self, what: str) -> str:
        return f"{self.run_id}-{what}"

    @property
    def log_dir(self) -> Path:
        path = LOCAL / "logs" / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def quiet(self, section: str) -> float:
        """Wait (up to `load_wait` s) for the 1-minute load average to drop below `max_load`;
        the machine is shared. Returns, and records, the load the section started at."""
        deadline = time.monotonic() + self.load_wait
        load = load_average()
        if load >= self.max_load:
            say(f"{section}: waiting for the 1-min load average {load:.2f} < {self.max_load}")
        while load >= self.max_load and time.monotonic() < deadline:
            time.sleep(5)
            load = load_average()
        if load >= self.max_load:
            say(f"{section}: load still {load:.2f} after {self.load_wait:.0f}s; going on")
        self.loads[section] = load
        say(f"{section}: starting at load {load:.2f}")
        return load


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ------------------------------------------------------------------------------------ Kafka


def admin(brokers: Brokers) -> AdminClient:
    return AdminClient({"bootstrap.servers": brokers.bootstrap})


def create_topics(
    brokers: Brokers, names: Sequence[str], partitions: int = PARTITIONS, compact: bool = False
) -> None:
    config = {"cleanup.policy": "compact"} if compact else {}
    client = admin(brokers)  # kept referenced until the futures are done
    futures = client.create_topics(
        [
            NewTopic(n, num_partitions=partitions, replication_factor=-1, config=config)
            for n in names
        ]
    )
    for future in futures.values():
        future.result(60)
    # A topic created a moment ago may have no leader yet; wait until its metadata answers.
    consumer = Consumer({"bootstrap.servers": brokers.bootstrap, "group.id": "bench-meta"})
    try:
        for name in names:
            deadline = time.monotonic() + 60
            while True:
                meta = consumer.list_topics(name, timeout=10).topics[name]
                if meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {name} has no leaders after 60s")
                time.sleep(0.2)
    finally:
        consumer.close()


def user_state_env(run: Run, users_topic: str) -> dict[str, str]:
    """user-state's environment for a run: its users topic, and activity topics of the run's own
    (empty), so no run reads what `make run` or another run left in the default ones."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": run.brokers.bootstrap,
        "USERS_TOPIC": users_topic,
        "VIP_SESSIONS_TOPIC": f"{run.run_id}.vip-session",
        "VIP_DAYS_TOPIC": f"{run.run_id}.vip-day",
        "VIP_ACTIONS_TOPIC": f"{run.run_id}.vip-action-feed",
    }


def delete_run_topics(run: Run) -> None:
    """Every topic of this run, Quix's changelog topics included (they carry the group name)."""
    client = admin(run.brokers)
    names = [n for n in client.list_topics(timeout=30).topics if run.run_id in n]
    if names:
        for future in client.delete_topics(names, operation_timeout=60).values():
            try:
                future.result(60)
            except KafkaException as exc:
                say(f"could not delete a topic: {exc}")
    say(f"deleted {len(names)} topics of {run.run_id}")


def producer(brokers: Brokers, **options: object) -> Producer:
    """Like the services' producers (idempotent, lz4), batching harder for preloads."""
    config: dict[str, object] = {
        "bootstrap.servers": brokers.bootstrap,
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 1_000_000,
        **options,
    }
    return Producer(config)


def preload(
    brokers: Brokers,
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
    out: Producer | None = None,
) -> int:
    """Produce every (key, value), wait until all are acknowledged; returns the count."""
    out = out or producer(brokers)
    failures: list[str] = []

    def delivered(error: object, _: object) -> None:
        if error is not None:
            failures.append(str(error))

    count = 0
    for key, value in records:
        while True:
            try:
                out.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                out.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            out.poll(0)
    remaining = out.flush(120)
    if remaining or failures:
        raise RuntimeError(f"preload of {topic}: {remaining} unsent, {len(failures)} failed")
    return count


def end_offsets(brokers: Brokers, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": brokers.bootstrap, "group.id": "bench-meta"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def wait_group_stable(brokers: Brokers, group: str, members: int, timeout: float) -> None:
    """Until the group has settled with `members` members, each assigned some partitions."""
    client = admin(brokers)
    deadline = time.monotonic() + timeout
    while True:
        description = client.describe_consumer_groups([group])[group].result(10)
        if (
            description.state == ConsumerGroupState.STABLE
            and len(description.members) == members
            and all(m.assignment.topic_partitions for m in description.members)
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group} not stable with {members} members in {timeout}s")
        time.sleep(0.5)


def attempt(results: dict[str, Any], key: str, measure: Callable[[], Any]) -> None:
    """Run one measurement; a failure is recorded (and shown in the report) and the run goes
    on, so one broken part does not cost the figures of all the others."""
    try:
        results[key] = measure()
    except Exception as exc:
        say(f"{key} FAILED:\n{traceback.format_exc()}")
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # A process's exit is explained by the last line of its log tail.
        reason = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
        results[key] = {"error": f"{type(exc).__name__}: {reason}"[:400]}


# ---------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2) if values else float("nan"),
        "mean": round(statistics.fmean(values), 2) if values else float("nan"),
    }


def iso_millis(epoch_ms: int) -> str:
    """The VipAction's event_time format: ISO-8601 UTC with milliseconds."""
    moment = time.gmtime(epoch_ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{epoch_ms % 1000:03d}Z"


def parse_iso_millis(text: str) -> int:
    moment = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(moment) * 1000 + int(text[20:23])


def log_seconds(log: Path, message: str) -> float | None:
    """The `seconds` field of the first JSON log line with this event, if any."""
    pattern = re.compile(r'"seconds":\s*([0-9.]+)')
    for line in log.read_text(errors="replace").splitlines():
        if f'"{message}"' in line:
            found = pattern.search(line)
            if found:
                return float(found.group(1))
    return None
