"""The sessions query under faults: kill -9 in both delivery modes, scale 1 -> 2 -> 1, a Kafka
restart; then every final session row against DuckDB (tests/faults/sessions_harness.py), into
docs/RELIABILITY.md."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.faults.conftest import DedicatedBrokers, FaultPipeline
from tests.faults.report import STATIC_MEMBER_ID, SessionRow
from tests.faults.sessions_harness import SessionsRun
from tests.faults.test_faults import DOWN_SECONDS, record_outcome
from tests.support.eventually import eventually
from tests.support.groups import wait_members
from tests.support.pipeline import Names

pytestmark = pytest.mark.faults

Make = Callable[..., SessionsRun]
MODES = ["at-least-once", "exactly-once"]


@pytest.fixture
def sessions(
    session_report: list[SessionRow],
    brokers: DedicatedBrokers,
    names: Names,
    pipeline: FaultPipeline,
    request: pytest.FixtureRequest,
) -> Iterator[Make]:
    made: list[SessionsRun] = []

    def make(
        key: str, mode: str, static_member: str | None = None, *, joined: bool = False
    ) -> SessionsRun:
        row = SessionRow(key, mode)
        session_report.append(row)
        delivery = mode.replace("-", "_")
        made.append(SessionsRun(brokers, pipeline, names, row, delivery, static_member, joined))
        return made[-1]

    yield make
    record_outcome([each.row for each in made], request)


@pytest.mark.parametrize("mode", MODES)
def test_kill_sessions(sessions: Make, mode: str) -> None:
    run = sessions("kill-sessions", mode, static_member=STATIC_MEMBER_ID).start()
    _kill_and_replace(run, mode)


def test_kill_joined_sessions(sessions: Make) -> None:
    """Over Clicks JOIN Users: clicks of users never seen wait for them and pin the commits, so
    the replacement resumes behind them, past records it must not count or report twice."""
    run = sessions(
        "kill-joined-sessions", "exactly-once", static_member=STATIC_MEMBER_ID, joined=True
    ).start()
    _kill_and_replace(run, "exactly-once")


def _kill_and_replace(run: SessionsRun, mode: str) -> None:
    run.wait_fault_point()
    fault = time.time()
    run.pipeline.kill(run.enrichers[0])
    replacement = run.start_enricher("sessions-2")
    run.row.recovery = f"{run.flowing_after(fault, [replacement]):.1f}"
    replacement.wait_ready()
    run.settle()
    run.judge(exactly_once=mode == "exactly-once")
    run.stop()


def test_scale_sessions(sessions: Make, brokers: DedicatedBrokers) -> None:
    run = sessions("scale-sessions", "exactly-once").start()
    # Early: joining the group and restoring took 6 s on a loaded CI machine, and the second
    # member must still find actions to aggregate (at 30% the writer had finished by then).
    run.wait_fault_point(share=0.1)
    fault = time.time()
    second = run.start_enricher("sessions-2", instance="2")
    check = run.pipeline.check_alive
    wait_members(brokers.kafka, run.group, 2, check=check)
    run.row.recovery = f"{run.flowing_after(fault, [run.enrichers[0], second]):.1f}"
    eventually(
        lambda: check() or second.metric("enricher_records_aggregated_total") > 0,
        timeout=120,
        message="the second sessions enricher aggregated nothing",
    )
    assert run.pipeline.terminate(second) == 0, second.log_tail()
    wait_members(brokers.kafka, run.group, 1, check=check)
    run.settle()
    run.judge(exactly_once=True)
    run.stop()


def test_restart_kafka_sessions(sessions: Make, brokers: DedicatedBrokers) -> None:
    run = sessions("restart-kafka-sessions", "exactly-once").start()
    run.wait_fault_point()
    stopped, answered = brokers.outage("kafka", DOWN_SECONDS)
    run.row.notes.append(f"the broker answered again {answered - stopped:.1f} s after it stopped")
    run.row.recovery = f"{run.flowing_after(stopped, run.enrichers):.1f}"
    run.settle()
    run.judge(exactly_once=True)
    run.stop()
