"""docs/RELIABILITY.md, written at the end of the fault session from what the scenarios measured."""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.brokers import ROOT

DOC = ROOT / "docs" / "RELIABILITY.md"
PARTIAL = ROOT / ".local" / "faults" / "RELIABILITY.partial.md"

# The traffic of every scenario (the generator's settings) and when the fault comes.
USERS = 1000
CLICKS = 12_000
RATE = 800  # clicks per second
UNKNOWN_SHARE = 0.03
MALFORMED_SHARE = 0.01
FAULT_AT = 2_500  # clicks out before the fault: early enough that traffic outlasts the fault
# KAFKA_GROUP_INSTANCE_ID of the enricher and the bridge in the kill -9 scenarios: static
# membership, the replacement rejoining as the member it replaces (a StatefulSet pod's name).
STATIC_MEMBER_ID = "replica-0"


@dataclass(frozen=True)
class Catalogued:
    title: str
    fault: str  # what is done, and which instant "the fault" is


CATALOGUE: dict[str, Catalogued] = {
    "kill-enricher": Catalogued(
        "kill -9 the enricher",
        "SIGKILL to the enricher (no handler runs, nothing is committed), then a new one started"
        " at once with the same consumer group and static member id. Fault instant: the SIGKILL.",
    ),
    "kill-bridge": Catalogued(
        "kill -9 rabbit-bridge",
        "SIGKILL to rabbit-bridge, then a new one started at once with the same consumer group"
        " and static member id. Fault instant: the SIGKILL.",
    ),
    "kill-user-state": Catalogued(
        "kill -9 user-state",
        "SIGKILL to user-state, then a new one started at once on the same port; it reloads the"
        " users topic before it answers. The enricher keeps retrying its lookup (never drops or"
        " unmatches the batch in hand). Fault instant: the SIGKILL.",
    ),
    "restart-kafka": Catalogued(
        "restart the Kafka broker",
        "`scripts/brokers.sh stop-kafka` (SIGTERM, controlled shutdown of the only broker), 3 s"
        " down, `start-kafka`. The services are not touched. Fault instant: the broker process"
        " has exited.",
    ),
    "restart-rabbitmq": Catalogued(
        "restart RabbitMQ",
        "`scripts/brokers.sh stop-rabbitmq` (`rabbitmqctl stop`), 3 s down, `start-rabbitmq`."
        " The quorum queue and what it holds survive. Fault instant: the node has stopped.",
    ),
    "scale-enricher": Catalogued(
        "scale the enricher 1 → 3 → 1",
        "Two more enrichers join the same consumer group (own HTTP ports) mid-stream; once the"
        " group is stable with 3 members and more clicks have flowed, two of them get SIGTERM."
        " Two fault instants, the two starts and the two SIGTERMs, so two recovery times (the"
        " first counts only arrivals before the second instant).",
    ),
    "malformed-burst": Catalogued(
        "burst of 2,000 malformed clicks",
        "2,000 off-contract records (not JSON, not an object, missing and mistyped fields, null"
        " value, no key, oversized) produced straight to the click topic mid-stream. Each must"
        " reach click.dlq with its source and reason headers; every service keeps running."
        " Fault instant: the first record of the burst is produced.",
    ),
}


# The windowed query's scenarios (tests/faults/test_session_faults.py), in a table of their own.
SESSION_CATALOGUE: dict[str, Catalogued] = {
    "kill-sessions": Catalogued(
        "kill -9 the sessions enricher",
        "SIGKILL to the enricher running the sessions query, then a new one started at once with"
        " the same consumer group; it restores the state from the changelog. Fault instant: the"
        " SIGKILL.",
    ),
    "scale-sessions": Catalogued(
        "scale the sessions enricher 1 → 2 → 1",
        "A second sessions enricher joins the group mid-stream (partitions and their state move"
        " to it through the changelog), then gets SIGTERM once it has aggregated actions of its"
        " own (they move back). Fault instant: the second start.",
    ),
    "kill-joined-sessions": Catalogued(
        "kill -9 the sessions-over-the-join enricher",
        "As `kill-sessions`, for the same sessions computed from clicks joined to users as of"
        " each click (PLATINUM only; levels changing mid-day; a tenth of the users never seen, so"
        " their clicks wait for them and pin the commits until unmatched).",
    ),
    "restart-kafka-sessions": Catalogued(
        "restart the Kafka broker under the sessions enricher",
        "`scripts/brokers.sh stop-kafka`, 3 s down, `start-kafka`, the sessions enricher"
        " untouched. Fault instant: the broker process has exited.",
    ),
}


@dataclass
class SessionRow:
    scenario: str
    mode: str
    outcome: str = "not run"
    actions: int | None = None
    expected: int | None = None
    missing: int | None = None
    double_counted: int | None = None
    wrong: int | None = None
    duplicate_finals: int | None = None
    recovery: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{SESSION_CATALOGUE[self.scenario].title} ({self.mode})"


@dataclass
class Row:
    scenario: str
    mode: str  # the enricher's delivery mode
    outcome: str = "not run"
    clicks: int | None = None
    expected: int | None = None
    missing: int | None = None
    unexpected: int | None = None
    duplicates: int | None = None
    recovery: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        title = CATALOGUE[self.scenario].title
        return title if self.mode == "at-least-once" else f"{title} ({self.mode} enricher)"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Machine:
    kafka: str
    rabbitmq: str

    def line(self) -> str:
        return (
            f"{platform.node()}: {os.cpu_count()} CPUs (nproc), {platform.system()}"
            f" {platform.release()}, Python {platform.python_version()}, Apache Kafka {self.kafka}"
            f" (single KRaft node), RabbitMQ {self.rabbitmq} (single node)"
        )


def render(
    rows: list[Row],
    machine: Machine,
    seconds: float,
    complete: bool,
    session_rows: list[SessionRow] | None = None,
) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability under faults",
        "",
        "_Generated by `tests/faults` (`make faults`) at the end of its run; do not edit by hand._",
        "",
        "Each scenario starts the four services as processes against a broker pair of its own"
        " (Kafka on 127.0.0.1:19192, RabbitMQ on 5682, started by `scripts/brokers.sh` with"
        " `BROKERS_HOME=.local/faults`, so restarting them disturbs nobody), with fresh topic,"
        f" group, exchange and queue names. The generator sends {USERS:,} users, then"
        f" {CLICKS:,} clicks at {RATE}/s (about {CLICKS / RATE:.0f} s of traffic;"
        f" {UNKNOWN_SHARE:.0%} of unknown users, {MALFORMED_SHARE:.0%} malformed). One fault is"
        f" injected once {FAULT_AT:,} clicks are out; the pipeline recovers on its own. When the"
        " generator has finished, the enricher group has committed the whole click topic and the bridge group"
        " the whole vip-action topic, the RabbitMQ queue is read to empty and compared with DuckDB"
        " running the seed's SQL over the users and clicks read back from Kafka"
        " (`tests/support/oracle.py`). click.dlq and click.unmatched must hold exactly the"
        " malformed and the unknown-user clicks.",
        "",
        "| # | Scenario | Fault |",
        "|---|---|---|",
    ]
    for index, (key, item) in enumerate(CATALOGUE.items(), start=1):
        lines.append(f"| {index} | {item.title} (`{key}`) | {item.fault} |")
    lines += [
        "",
        "- **missing**: VipActions the oracle expects that never reached the RabbitMQ queue."
        " Asserted to be 0, as is **unexpected** (a VipAction the oracle does not expect, or a"
        " wrong one).",
        "- **duplicates**: messages in the queue whose `event_id` (= `message_id`) was already"
        " received. Delivery is at-least-once: a process killed with SIGKILL loses its"
        " uncommitted offsets, and its successor emits those VipActions again. Counted, not"
        " asserted, except with the enricher in exactly-once mode, where the vip-action topic"
        " (read with read_committed) must hold no event_id twice.",
        "- **recovery seconds**: how long VIP actions stopped flowing because of the fault: the"
        " longest pause, from the fault instant on, between two VipActions of one partition of"
        " the click topic (4) reaching the RabbitMQ exchange, the slowest partition counting,"
        " and counted from the fault instant itself, so a component down from that instant"
        " counts in full. A pause that begins later (a rebalance moving partitions a few seconds"
        " after new replicas start) counts too, and partitions the fault did not stop show only"
        " the normal spacing of VIP clicks (about 20 a second per partition here). Arrivals are"
        " observed through a durable queue of the test's own bound to the exchange: nothing"
        " published while that observer reconnects after a RabbitMQ restart is missed, but its"
        " arrival time may then be late by the reconnect, a few hundred ms. The notes give when"
        " the first VipAction of a click produced after the fault arrived (the test waits for it"
        " before anything else, so a pipeline that never recovers fails there) and when the"
        " restarted component itself was ready (`/readyz` answering 200, or the broker"
        " answering again).",
        "- A SIGKILLed consumer stays a member of its group until its session (45 s by"
        " default) times out, and with dynamic membership the partitions it held wait that long"
        " for a new owner. The kill -9 scenarios therefore run the enricher and the bridge with"
        f" static membership (`KAFKA_GROUP_INSTANCE_ID={STATIC_MEMBER_ID}`, what deploy/k8s"
        " sets from the StatefulSet pod's name) and the default session: the replacement"
        " rejoins as the member it replaces and gets its partitions back at once, without a"
        " rebalance. Sessions stay at the default everywhere: a session shorter than a broker"
        " restart expires while the group coordinator is away, and librdkafka's consumer may"
        " then never rejoin its group (seen here once, with 10 s sessions across an 11 s broker"
        " restart; confluentinc/librdkafka#2944).",
        "",
        "Reproduce: `make faults` (or `uv run pytest tests/faults`); `make test` runs it too.",
        "",
        "## Results",
        "",
        f"{now}, {machine.line()}; the suite took {seconds:.0f} s (brokers' start included).",
        "",
    ]
    if not complete:
        lines += ["**Partial run: not every scenario ran.**", ""]
    lines += [
        "| Scenario | Events (clicks) | Expected VIP actions | Missing | Duplicates"
        " | Recovery seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        label = row.label if row.outcome == "passed" else f"{row.label} — **{row.outcome}**"
        lines.append(
            f"| {label} | {_cell(row.clicks)} | {_cell(row.expected)} | {_cell(row.missing)}"
            f" | {_cell(row.duplicates)} | {_cell(row.recovery)} |"
        )
    lines += ["", "Notes:", ""]
    for row in rows:
        details = [f"unexpected {row.unexpected}"] if row.unexpected is not None else []
        details += row.notes
        lines.append(f"- {row.label}: " + "; ".join(details) + ".")
    lines += _render_sessions(session_rows or [])
    return "\n".join(lines) + "\n"


def _render_sessions(rows: list[SessionRow]) -> list[str]:
    from tests.faults.sessions_harness import PARTITIONS, RATE, USERS

    lines = [
        "",
        "## The sessions query under faults",
        "",
        "An enricher running the sessions query of `queries/vip-sessions.sql` (30-minute gap;"
        " clicks, carts, checkouts, distinct pages per session) reads VipActions that the test"
        f" writes at {RATE}/s ({USERS} VIPs visiting in bursts, up to 20 s out of order;"
        f" {PARTITIONS} partitions, `tests/support/sessions.py`). The fault comes once 30% of"
        " them are out (10% for the scale scenario, so the second member still has actions to"
        " take). At the end one far-future action per partition moves the watermark past"
        " every session, and once the group has committed the whole input every final row is"
        " compared with DuckDB's sessionization (window functions) of the same actions read"
        " back from Kafka, less those the enricher sent to `.late`. Over the join, it reads"
        " clicks instead and DuckDB first joins each to its user's version as of the click"
        " (`ASOF JOIN`) and keeps the PLATINUM ones.",
        "",
        "| # | Scenario | Fault |",
        "|---|---|---|",
    ]
    for index, (key, item) in enumerate(SESSION_CATALOGUE.items(), start=1):
        lines.append(f"| {index} | {item.title} (`{key}`) | {item.fault} |")
    lines += [
        "",
        "- **missing**: a session with no final row, or one counting fewer clicks; **double"
        " counted**: a final counting more; **wrong**: any other final that is no expected"
        " session. All asserted 0 in both modes but double counted, asserted 0 exactly once.",
        "- **duplicate finals**: the same final row written again (at least once, a batch whose"
        " changelog partly landed before a crash is redone; consumers key on `(user_id,"
        " window_start)`). Asserted 0 exactly once.",
        "- **recovery seconds**: from the fault until the output topic grows again.",
        "",
        "| Scenario | Actions | Expected sessions | Missing | Double counted | Wrong"
        " | Duplicate finals | Recovery seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        label = row.label if row.outcome == "passed" else f"{row.label} — **{row.outcome}**"
        lines.append(
            f"| {label} | {_cell(row.actions)} | {_cell(row.expected)} | {_cell(row.missing)}"
            f" | {_cell(row.double_counted)} | {_cell(row.wrong)} | {_cell(row.duplicate_finals)}"
            f" | {_cell(row.recovery)} |"
        )
    lines += ["", "Notes:", ""]
    lines += [f"- {row.label}: " + "; ".join(row.notes) + "." for row in rows if row.notes]
    return lines


def write(
    rows: list[Row],
    machine: Machine,
    seconds: float,
    every_test: bool,
    session_rows: list[SessionRow] | None = None,
) -> Path:
    session_rows = session_rows or []
    ran = {row.scenario for row in [*rows, *session_rows] if row.outcome != "not run"}
    complete = every_test and ran == set(CATALOGUE) | set(SESSION_CATALOGUE)
    target = DOC if complete else PARTIAL
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(rows, machine, seconds, complete, session_rows))
    return target
