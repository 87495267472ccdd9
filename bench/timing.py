"""Timing a consumer from outside: the processes it runs in, their CPU and memory, and its
progress (a group's committed offsets, a topic's end, a queue's depth) from the first record seen
to the last."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from bench.common import ROOT, Brokers, Run, say

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TIMEOUT = 1800.0  # a failure guard only: a run far slower than this is broken, not slow


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
            # CPU seconds per million records: the cost, comparable however busy the machine was.
            "cpu_per_million": {
                name: round(cpu / self.records * 1e6, 2) if self.records else None
                for name, cpu in self.cpu.items()
            },
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


class EndOffsets:
    """The sum of a topic's end offsets: what a producer has written to it so far."""

    def __init__(self, brokers: Brokers, topic: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": brokers.bootstrap, "group.id": "bench-meta"}
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]

    def total(self) -> int:
        return sum(
            self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions
        )

    def close(self) -> None:
        self._consumer.close()


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


def exited_check(
    process: subprocess.Popen[bytes], log: Path, what: str, *, may_finish: bool = False
) -> Callable[[], None]:
    """Raises once the process has exited. With `may_finish` (a tool that stops by itself after
    its last record) a clean exit is let through once: the watch then reads its final progress,
    and only if that is not all of it does the next check raise."""
    finished = False

    def check() -> None:
        nonlocal finished
        code = process.poll()
        if code is None:
            return
        if may_finish and code == 0 and not finished:
            finished = True
            return
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{what} exited with {code}; log:\n{tail}")

    return check


@contextmanager
def running(
    command: Sequence[str], log: Path, what: str, *, may_finish: bool = False
) -> Iterator[tuple[subprocess.Popen[bytes], Callable[[], None]]]:
    """A process (run from the repo root, its output appended to `log`) and its liveness check,
    stopped on the way out."""
    with log.open("ab") as sink:
        process = subprocess.Popen(list(command), cwd=ROOT, stdout=sink, stderr=sink)
    try:
        yield process, exited_check(process, log, what, may_finish=may_finish)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def time_command(
    run: Run,
    command: Sequence[str],
    *,
    what: str,
    log_name: str,
    group: str,
    topic: str,
    total: int,
    may_finish: bool = False,
) -> Throughput:
    """Run a consumer process (a peer, a ceiling) and time it by its group's commits on `topic`;
    its CPU and Kafka's are measured over the same window. With `may_finish`, a tool that stops
    by itself after its last record, it is also waited for."""
    with running(command, run.log_dir / log_name, what, may_finish=may_finish) as (process, alive):
        timing = time_group(
            run,
            group,
            topic,
            total,
            pids={what: [process.pid], **broker_pids("kafka")},
            alive=alive,
            timeout=TIMEOUT,
            what=what,
        )
        if may_finish:
            process.wait(60)
    return timing
