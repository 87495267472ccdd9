"""Sections 1 and 5: enricher throughput against the broker's ceiling (bench/ceilings.py) and
its peers (bench/enricher_peers.py), and with 2 replicas; then a py-spy profile of the enricher
and user-state under the same load.

All read the same preloaded click topic (4 partitions) with a fresh consumer group each, and are
timed the same way: by the group's committed offsets, from the first commit seen to the one that
covers the whole topic.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.ceilings import measure_consumer_tool, measure_producer_tool, measure_python_copy
from bench.common import (
    LOCAL,
    ROOT,
    Run,
    attempt,
    end_offsets,
    say,
    user_state_env,
    wait_group_stable,
)
from bench.data import Data
from bench.enricher_peers import measure_kafka_streams, measure_quix
from bench.profile import collapse_report
from bench.timing import (
    TIMEOUT,
    CommittedOffsets,
    Throughput,
    broker_pids,
    time_group,
)
from tests.support.services import Service

ROUNDS = 3


def median_round(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate, the rates of all rounds beside it; the first failure if
    none was measured."""
    measured = sorted((e for e in entries if "error" not in e), key=lambda e: e["rate"])
    if not measured:
        return entries[0]
    return {**measured[(len(measured) - 1) // 2], "rounds": [e.get("rate") for e in entries]}


def start_user_state(
    run: Run, users_topic: str, label: str, extra: dict[str, str] | None = None
) -> Service:
    service = Service(
        "user-state",
        {**user_state_env(run, users_topic), **(extra or {})},
        run.log_dir,
        log_name=label,
    )
    service.start()
    service.wait_ready(timeout=TIMEOUT)
    return service


def enricher_service(
    run: Run,
    clicks: str,
    group: str,
    user_state: Service,
    label: str,
    extra: dict[str, str] | None = None,
) -> Service:
    return Service(
        "enricher",
        {
            "KAFKA_BOOTSTRAP_SERVERS": run.brokers.bootstrap,
            "CLICKS_TOPIC": clicks,
            "VIP_ACTIONS_TOPIC": run.name(f"{group}-vip-action"),
            "CONSUMER_GROUP": run.name(group),
            "USER_STATE_URL": user_state.url,
            "TRANSACTIONAL_ID": run.name(f"{group}-{label}"),
            **(extra or {}),
        },
        run.log_dir,
        log_name=label,
    )


def _pid(service: Service) -> int:
    assert service.process is not None
    return service.process.pid


def _alive(services: Sequence[Service]) -> Any:
    def check() -> None:
        for service in services:
            service.check_alive()

    return check


def measure_enricher(
    run: Run,
    clicks: str,
    total: int,
    user_state: Service,
    replicas: int,
    open_gate: Callable[[], None] | None = None,
    avro: bool = False,
    round_: int = 0,
) -> tuple[Throughput, int]:
    """Returns the timing and the VipActions written. With `open_gate` (replicas on a gated
    topic), the replicas first form their group, then the gate makes the clicks visible. With
    `avro`, clicks in and VipActions out are Avro (`clicks` must be an Avro topic). Each
    `round_` has a group (and output topic) of its own."""
    group = f"enricher-x{replicas}" + ("-avro" if avro else "") + (f"-r{round_}" if round_ else "")
    run.quiet(group.replace("-", " "))
    extra = run.brokers.avro_env() if avro else None
    services = [
        enricher_service(run, clicks, group, user_state, f"{group}-{i}", extra)
        for i in range(replicas)
    ]
    for service in services:
        service.start()
    try:
        if open_gate is not None:
            for service in services:
                service.wait_ready(timeout=TIMEOUT)
            wait_group_stable(run.brokers, run.name(group), replicas, timeout=120)
            open_gate()
        result = time_group(
            run,
            run.name(group),
            clicks,
            total,
            pids={
                "enricher": [_pid(s) for s in services],
                "user-state": [_pid(user_state)],
                **broker_pids("kafka"),
            },
            alive=_alive([*services, user_state]),
            timeout=TIMEOUT,
            what=group.replace("-", " "),
        )
    finally:
        for service in services:
            service.terminate()
    return result, sum(end_offsets(run.brokers, run.name(f"{group}-vip-action")).values())


def profile(run: Run, clicks: str, user_state: Service, seconds: float) -> dict[str, Any]:
    """py-spy on the enricher (main thread, waits included) and user-state (GIL holders only)
    while the enricher works through the click topic with a fresh group."""
    run.quiet("profile")
    service = enricher_service(run, clicks, "profile", user_state, "enricher-profile")
    service.start()
    out = LOCAL / "profiles" / run.run_id
    out.mkdir(parents=True, exist_ok=True)
    try:
        committed = CommittedOffsets(run.brokers, run.name("profile"), clicks)
        deadline = time.monotonic() + 300
        while committed.total() == 0:
            service.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("the enricher committed nothing in 300s")
            time.sleep(0.2)
        committed.close()
        say(f"profiling the enricher and user-state for {seconds:.0f}s (py-spy)")
        spies = {
            "enricher": _py_spy(_pid(service), out / "enricher.txt", seconds, idle=True),
            "user-state": _py_spy(_pid(user_state), out / "user-state.txt", seconds, gil=True),
        }
        for spy in spies.values():
            spy.wait(seconds + 120)
    finally:
        service.terminate()
    return {
        "seconds": seconds,
        "files": {name: str((out / f"{name}.txt").relative_to(ROOT)) for name in spies},
        "enricher": collapse_report(out / "enricher.txt", main_thread_only=True),
        "user-state": collapse_report(out / "user-state.txt", main_thread_only=False),
    }


def _py_spy(
    pid: int, output: Path, seconds: float, *, idle: bool = False, gil: bool = False
) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--nolineno"]
    command += ["--duration", str(round(seconds)), "--output", str(output)]
    if idle:
        command.append("--idle")  # waits on Kafka and user-state show as time spent
    if gil:
        command.append("--gil")  # only samples running Python code: where the CPU goes
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def avro_entry(
    run: Run,
    data: Data,
    users: int,
    clicks: int,
    entry: Callable[[str, tuple[Throughput, int]], dict[str, Any]],
) -> dict[str, Any]:
    """The same data and query, with Avro on the clicks and VipActions topics (and the users
    topic, read by a user-state of its own before the timing starts)."""
    users_topic, clicks_topic = data.avro_topics(users, clicks)
    user_state = start_user_state(run, users_topic, "user-state-avro", run.brokers.avro_env())
    try:
        measured = measure_enricher(run, clicks_topic, clicks, user_state, 1, avro=True)
    finally:
        user_state.terminate()
    return entry("enricher x1 avro", measured)


def run_section(
    run: Run, data: Data, users: int, clicks: int, profile_seconds: float
) -> dict[str, Any]:
    users_topic = data.users_topic(users)
    clicks_topic = data.clicks_topic(users, clicks)
    expected = data.platinum_clicks(users, clicks)
    user_state = start_user_state(run, users_topic, "user-state-enricher")
    results: dict[str, Any] = {"users": users, "clicks": clicks, "expected_vip": expected}

    def entry(what: str, measured: tuple[Throughput, int]) -> dict[str, Any]:
        timing, outputs = measured
        say(f"{what}: {timing.rate:,.0f} clicks/s, {outputs:,} records out")
        return {**timing.as_dict(), "outputs": outputs}

    try:
        # the ceilings and the peers beside the enricher, one after another on the same topic
        attempt(results, "consumer_tool", lambda: measure_consumer_tool(run, clicks_topic, clicks))
        attempt(
            results,
            "producer_tool",
            lambda: measure_producer_tool(run, data, users, clicks),
        )
        attempt(results, "ceiling", lambda: measure_python_copy(run, clicks_topic, clicks))
        # The headline pair, interleaved ROUNDS times: this machine is shared and one run of
        # either can be a third off. Each is reported as its median round.
        rounds: dict[str, Any] = {}
        for round_ in range(ROUNDS):
            attempt(
                rounds,
                f"enricher_x1#{round_}",
                lambda r=round_: entry(
                    "enricher x1",
                    measure_enricher(run, clicks_topic, clicks, user_state, 1, round_=r),
                ),
            )
            attempt(
                rounds,
                f"kafka_streams#{round_}",
                lambda r=round_: measure_kafka_streams(run, clicks_topic, users_topic, clicks, r),
            )
        for key in ("enricher_x1", "kafka_streams"):
            results[key] = median_round([rounds[f"{key}#{r}"] for r in range(ROUNDS)])
        attempt(results, "quix", lambda: measure_quix(run, clicks_topic, users_topic, clicks))
        attempt(results, "enricher_avro_x1", lambda: avro_entry(run, data, users, clicks, entry))

        def two_replicas() -> dict[str, Any]:
            # Started together on a visible topic, the second replica's join rebalances the
            # group while the first is committing; a gated copy of the clicks avoids that.
            gated, open_gate = data.gated_clicks_topic(users, clicks)
            measured = measure_enricher(run, gated, clicks, user_state, 2, open_gate)
            return entry("enricher x2", measured)

        attempt(results, "enricher_x2", two_replicas)
        if profile_seconds > 0:
            # Only while there is work: sampling past the topic's end profiles idle polls.
            timed = results.get("enricher_x1", {}).get("seconds")
            seconds = min(profile_seconds, 0.8 * timed) if timed else profile_seconds
            attempt(
                results,
                "profile",
                lambda: profile(run, clicks_topic, user_state, seconds),
            )
    finally:
        user_state.terminate()
    return results
