"""What every benchmark shares: broker addresses, fresh names, a quiet machine, Kafka data, the
group-offset watcher that times a consumer, process CPU and memory, and small statistics."""

from __future__ import annotations

import calendar
import math
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
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
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


# ------------------------------------------------------------------- processes and timing


def broker_pids(*names: str) -> dict[str, list[int]]:
    """The local Kafka and RabbitMQ (scripts/brokers.sh's pid files), when the run uses them, so
    the CPU they spend in a measured window shows beside the client's: all share 2 cores."""
    found: dict[str, list[int]] = {}
    for name, pid_file in (
        ("kafka", ROOT / ".local" / "kafka" / "kafka.pid"),
        ("rabbitmq", ROOT / ".local" / "rabbitmq" / "rabbit.pid"),
    ):
        if name not in names:
            continue
        try:
            pid = int(pid_file.read_text().strip())
            cpu_seconds(pid)
        except (OSError, ValueError):
            continue
        found[name] = [pid]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (librdkafka's threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kb(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


@dataclass
class Throughput:
    """Records completed between two observed moments, and the CPU each process group spent."""

    records: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            # CPU seconds per second of the window: 1.0 is one core busy all the time.
            "cores": {name: round(cpu / self.seconds, 2) for name, cpu in self.cpu.items()},
        }


Pids = Mapping[str, Sequence[int]]


def _cpu(pids: Pids) -> dict[str, float]:
    return {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}


def watch_progress(
    progress: Callable[[], int],
    total: int,
    *,
    pids: Pids,
    alive: Callable[[], None],
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> Throughput:
    """Time a consumer by its progress: from the first moment any is seen to the moment all
    `total` are. Both ends are real progress events (a commit, a queue depth), so startup
    (group join, JVM start) is left out and only the steady processing is timed."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int, dict[str, float]] | None = None
    done = 0
    last_report = time.monotonic()
    while True:
        alive()
        done = progress()
        now = time.monotonic()
        if first is None and done > 0:
            first = (now, done, _cpu(pids))
        if done >= total:
            break
        if now > deadline:
            raise TimeoutError(f"{what}: {done} of {total} after {timeout:.0f}s")
        if now - last_report > 15:
            say(f"{what}: {done:,} of {total:,}")
            last_report = now
        time.sleep(interval)
    assert first is not None
    started, already, cpu_start = first
    cpu_end = _cpu(pids)
    return Throughput(
        done - already, now - started, {n: cpu_end[n] - cpu_start[n] for n in cpu_end}
    )


class CommittedOffsets:
    """The offsets a consumer group committed on a topic, read from outside the group."""

    def __init__(self, brokers: Brokers, group: str, topic: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": brokers.bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]

    def total(self) -> int:
        result = self._consumer.committed(self._partitions, timeout=10)
        return sum(tp.offset for tp in result if tp.offset > 0)

    def close(self) -> None:
        self._consumer.close()


def time_group(
    run: Run,
    group: str,
    topic: str,
    total: int,
    *,
    pids: Pids,
    alive: Callable[[], None],
    timeout: float,
    what: str,
) -> Throughput:
    committed = CommittedOffsets(run.brokers, group, topic)
    try:
        return watch_progress(
            committed.total, total, pids=pids, alive=alive, timeout=timeout, what=what
        )
    finally:
        committed.close()


def exited_check(process: subprocess.Popen[bytes], log: Path, what: str) -> Callable[[], None]:
    def check() -> None:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{what} exited with {process.returncode}; log:\n{tail}")

    return check


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
