"""The enricher's peers, each running the seed's query on the enricher's own click topic and timed
the same way (its consumer group's committed offsets): Kafka Streams (KStream x GlobalKTable, one
stream thread, `bench/peers/kafka-streams`) and Quix Streams (`join_asof`,
`bench/peers/quix_enricher.py`)."""

from __future__ import annotations

import shutil
from typing import Any

from bench.common import LOCAL, ROOT, Run, create_topics, end_offsets, say
from bench.installs import kafka_streams_classpath, quix_python
from bench.timing import time_command


def measure_kafka_streams(
    run: Run, clicks: str, users: str, total: int, round_: int = 0
) -> dict[str, Any]:
    """Each `round_` is a new application (group, output topic, state) of its own."""
    classpath = kafka_streams_classpath()
    run.quiet("kafka streams")
    suffix = f"-r{round_}" if round_ else ""
    output = run.name(f"kstreams-vip-action{suffix}")
    create_topics(run.brokers, [output])
    group = run.name(f"kstreams{suffix}")
    state_dir = LOCAL / "kstreams-state" / f"{run.run_id}{suffix}"
    command = [
        *("java", "-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"),
        *("-cp", classpath, "VipJoin", "--bootstrap", run.brokers.bootstrap),
        *("--clicks", clicks, "--users", users, "--output", output),
        *("--group", group, "--state-dir", str(state_dir)),
    ]
    try:
        # Kafka Streams' application.id is its consumer group
        timing = time_command(
            run, command, what="kafka streams", log_name="kafka-streams.log", group=group,
            topic=clicks, total=total,
        )  # fmt: skip
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return _entry("kafka streams", timing.as_dict(), sum(end_offsets(run.brokers, output).values()))


def measure_quix(run: Run, clicks: str, users: str, total: int) -> dict[str, Any]:
    python = quix_python()
    run.quiet("quix")
    output = run.name("quix-vip-action")
    create_topics(run.brokers, [output])
    group = run.name("quix")
    state_dir = LOCAL / "quix-state" / run.run_id
    command = [
        *(str(python), str(ROOT / "bench" / "peers" / "quix_enricher.py")),
        *("--bootstrap", run.brokers.bootstrap, "--clicks", clicks, "--users", users),
        *("--output", output, "--group", group, "--state-dir", str(state_dir)),
    ]
    try:
        timing = time_command(
            run, command, what="quix", log_name="quix.log", group=group, topic=clicks, total=total
        )
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return _entry("quix", timing.as_dict(), sum(end_offsets(run.brokers, output).values()))


def _entry(what: str, timing: dict[str, Any], outputs: int) -> dict[str, Any]:
    say(f"{what}: {timing['rate']:,.0f} clicks/s, {outputs:,} records out")
    return {**timing, "outputs": outputs}
