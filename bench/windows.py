"""Section 6: the windowed queries. The sessions query (queries/vip-sessions.sql) over VipActions,
a tenth as many as the clicks, timed like the enricher (by its group's committed offsets); then
100k open sessions: the resident memory that holds them, and how fast a fresh instance restores
their state from the changelog."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from clickstream_common.contracts import encode_json

from bench.common import (
    ROOT,
    Run,
    attempt,
    create_topics,
    iso_millis,
    preload,
    say,
)
from bench.data import Data, vip_action_pairs
from bench.timing import (
    Throughput,
    broker_pids,
    memory_kb,
    time_group,
)
from tests.support.eventually import eventually
from tests.support.services import Service

TIMEOUT = 1800.0  # a failure guard only
QUERY = ROOT / "queries" / "vip-sessions.sql"


def sessions_service(run: Run, topic: str, group: str, label: str) -> Service:
    return Service(
        "enricher",
        {
            "KAFKA_BOOTSTRAP_SERVERS": run.brokers.bootstrap,
            "ENRICHER_QUERY_FILE": str(QUERY),
            "CLICKS_STREAM": "VipActions",
            "CLICKS_TOPIC": topic,
            "OUTPUT_STREAM": "VipSessions",
            "OUTPUT_TOPIC": run.name(f"{group}-vip-session"),
            "CONSUMER_GROUP": run.name(group),
        },
        run.log_dir,
        log_name=label,
    )


def _pid(service: Service) -> int:
    assert service.process is not None
    return service.process.pid


def measure_sessions(run: Run, topic: str, total: int) -> Throughput:
    run.quiet("sessions")
    service = sessions_service(run, topic, "sessions", "sessions")
    service.start()
    try:
        return time_group(
            run,
            run.name("sessions"),
            topic,
            total,
            pids={"sessions": [_pid(service)], **broker_pids("kafka")},
            alive=service.check_alive,
            timeout=TIMEOUT,
            what="sessions",
        )
    finally:
        service.terminate()


def open_sessions(count: int) -> Iterator[tuple[bytes, bytes]]:
    """One action of each of `count` VIPs, all within the last second: as many open sessions."""
    now_ms = int(time.time() * 1000)
    for i in range(count):
        user_id = f"open-{i:07d}"
        value = {
            "user_id": user_id,
            "name": f"VIP {i}",
            "page": i % 500,
            "action": "cart" if i % 3 else "view",
            "event_time": iso_millis(now_ms - i % 1000),
        }
        yield user_id.encode(), encode_json(value)


def measure_state(run: Run, count: int) -> dict[str, Any]:
    """Aggregate `count` open sessions, read the resident memory; then a fresh instance in the
    same group restores them all from the changelog, its log giving the time per partition."""
    topic = run.name(f"open-sessions-{count}")
    create_topics(run.brokers, [topic])
    preload(run.brokers, topic, open_sessions(count))
    run.quiet("sessions state")
    first = sessions_service(run, topic, "state", "sessions-state")
    first.start()
    try:
        time_group(
            run,
            run.name("state"),
            topic,
            count,
            pids={"sessions": [_pid(first)]},
            alive=first.check_alive,
            timeout=TIMEOUT,
            what="open sessions",
        )
        open_windows = first.metric("enricher_open_windows")
        state_bytes = first.metric("enricher_state_bytes")
        resident_kb = memory_kb(_pid(first))
    finally:
        first.terminate()
    second = sessions_service(run, topic, "state", "sessions-restore")
    second.start()
    try:
        eventually(
            lambda: (
                second.check_alive()
                or (second.metric_if_present("enricher_changelog_restored_total") or 0) >= count
            ),
            timeout=TIMEOUT,
            retry_on=(OSError,),
            message="the restore never covered the open sessions",
        )
        restored_kb = memory_kb(_pid(second))
    finally:
        second.terminate()
    records, seconds = _restore_log(second)
    say(
        f"state: {open_windows:,.0f} open sessions in {resident_kb / 1024:.0f} MB resident; "
        f"restored {records:,} records in {seconds:.2f}s"
    )
    return {
        "sessions": count,
        "open_windows": open_windows,
        "state_bytes": state_bytes,
        "resident_mb": round(resident_kb / 1024, 1),
        "restored_resident_mb": round(restored_kb / 1024, 1),
        "restore_records": records,
        "restore_seconds": round(seconds, 3),
        "restore_rate": round(records / seconds) if seconds > 0 else None,
    }


def _restore_log(service: Service) -> tuple[int, float]:
    """The records and seconds of every partition's restore, from the service's log."""
    records, seconds = 0, 0.0
    for line in service.log_path.read_text().splitlines():
        if '"state restored"' in line:
            entry = json.loads(line)
            records += entry["records"]
            seconds += entry["seconds"]
    return records, seconds


def run_section(run: Run, data: Data, users: int, clicks: int, open_count: int) -> dict[str, Any]:
    results: dict[str, Any] = {"clicks": clicks}
    actions = clicks // 10
    topic = run.name(f"vip-action-{actions}")
    create_topics(run.brokers, [topic])
    preload(run.brokers, topic, vip_action_pairs(data.users(users), actions))
    results["actions"] = actions

    def sessions() -> dict[str, Any]:
        timing = measure_sessions(run, topic, actions)
        say(f"sessions: {timing.rate:,.0f} actions/s")
        return timing.as_dict()

    attempt(results, "sessions", sessions)
    attempt(results, "state", lambda: measure_state(run, open_count))
    return results
