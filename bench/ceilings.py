"""What the broker itself can do on this machine, on the enricher's own click topic: Kafka's
consumer and producer performance tools (the `kafka-consumer-perf-test` / `kafka-producer-perf-test`
classes, from the Kafka jars scripts/brokers.sh runs), and the bare Python copy loop
(`bench/ceiling_copy.py`), which is what a confluent-kafka client alone does.

Each is timed like the enricher: the consumer tool by its group's committed offsets (it
auto-commits every 100 ms here), the producer tool by its topic's end offsets, the copy loop by
its commits; from the first progress seen to the last record, so JVM start and group join are
left out.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from bench.common import LOCAL, ROOT, Run, create_topics, end_offsets, say
from bench.data import Data, click_pairs
from bench.timing import (
    TIMEOUT,
    EndOffsets,
    Throughput,
    broker_pids,
    running,
    time_command,
    watch_progress,
)

KAFKA_LIB = ROOT / ".local" / "kafka" / "lib"
PAYLOADS = 10_000  # distinct click values the producer tool picks from


def _java(main_class: str, *args: str) -> list[str]:
    if not any(KAFKA_LIB.glob("kafka-tools-*.jar")):
        raise RuntimeError(f"no Kafka tools jar in {KAFKA_LIB} (scripts/brokers.sh install)")
    heap = "-Xmx512m"  # the tools' scripts give them 512 MB too
    return ["java", heap, "-cp", f"{KAFKA_LIB}/*", f"org.apache.kafka.tools.{main_class}", *args]


def measure_consumer_tool(run: Run, clicks: str, total: int) -> dict[str, Any]:
    """Kafka's consumer performance tool reading every click (the stock Java consumer,
    default fetch settings): the most a consumer of this topic gets from this broker here."""
    run.quiet("kafka consumer tool")
    group = run.name("kafka-consumer-perf")
    config = LOCAL / "logs" / run.run_id / "consumer-perf.properties"
    config.write_text("auto.commit.interval.ms=100\nauto.offset.reset=earliest\n")
    command = _java(
        "ConsumerPerformance",
        *("--bootstrap-server", run.brokers.bootstrap, "--topic", clicks, "--group", group),
        *("--messages", str(total), "--consumer.config", str(config), "--timeout", "60000"),
    )
    timing = time_command(
        run, command, what="consumer tool", log_name="consumer-perf.log", group=group,
        topic=clicks, total=total, may_finish=True,
    )  # fmt: skip
    return {
        **_entry("kafka consumer tool", timing, total),
        "own_summary": _last_csv(run.log_dir / "consumer-perf.log"),
    }


def measure_producer_tool(run: Run, data: Data, users: int, total: int) -> dict[str, Any]:
    """Kafka's producer performance tool writing `total` click-sized records (real click values,
    lz4 as the services compress, the Java producer's defaults otherwise: idempotent, acks=all)
    to a fresh 4-partition topic."""
    payloads = LOCAL / "logs" / run.run_id / "click-payloads.txt"
    values = [value for _, value in click_pairs(data.users(users), PAYLOADS)]
    payloads.write_bytes(b"\n".join(values) + b"\n")
    topic = run.name("kafka-producer-perf")
    create_topics(run.brokers, [topic])
    run.quiet("kafka producer tool")
    command = _java(
        "ProducerPerformance",
        *("--topic", topic, "--num-records", str(total), "--throughput", "-1"),
        *("--payload-file", str(payloads), "--producer-props"),
        *(f"bootstrap.servers={run.brokers.bootstrap}", "compression.type=lz4"),
    )
    log = run.log_dir / "producer-perf.log"
    written = EndOffsets(run.brokers, topic)
    try:
        with running(command, log, "kafka producer perf tool", may_finish=True) as (
            process,
            alive,
        ):
            timing = watch_progress(
                written.total,
                total,
                pids={"producer tool": [process.pid], **broker_pids("kafka")},
                alive=alive,
                timeout=TIMEOUT,
                what="kafka producer tool",
            )
            process.wait(60)
    finally:
        written.close()
    summary = next(
        (line for line in log.read_text().splitlines() if f"{total} records sent" in line), ""
    )
    return {
        **_entry("kafka producer tool", timing, total),
        "record_bytes": round(sum(map(len, values)) / len(values)),
        "own_summary": summary.strip().rstrip("."),
    }


def measure_python_copy(run: Run, clicks: str, total: int) -> dict[str, Any]:
    """The bare confluent-kafka copy loop: every click read and written back, nothing else."""
    run.quiet("python copy")
    output = run.name("ceiling-copy")
    create_topics(run.brokers, [output])
    group = run.name("ceiling")
    command = [
        *(sys.executable, "-m", "bench.ceiling_copy", "--bootstrap", run.brokers.bootstrap),
        *("--topic", clicks, "--output", output, "--group", group),
    ]
    timing = time_command(
        run, command, what="python copy", log_name="ceiling.log", group=group, topic=clicks,
        total=total,
    )  # fmt: skip
    return _entry("python copy", timing, sum(end_offsets(run.brokers, output).values()))


def _entry(what: str, timing: Throughput, outputs: int) -> dict[str, Any]:
    say(f"{what}: {timing.rate:,.0f} records/s")
    return {**timing.as_dict(), "outputs": outputs}


def _last_csv(log: Path) -> str:
    """The consumer tool's own result: its header's fields = its last line's values."""
    lines = log.read_text().splitlines()
    header = next((line for line in lines if line.startswith("start.time")), "")
    values = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    if not values:
        return ""
    if not header:
        return values[-1].strip()
    pairs = zip(header.split(", "), values[-1].split(", "), strict=False)
    return ", ".join(f"{name} {value.strip()}" for name, value in pairs)
