"""The sessions query under faults: one windowed enricher (queries/vip-sessions.sql's shape)
over VipActions a paced producer writes, or (`joined`) over clicks joined to users as of their
time, a fault injected mid-stream, then every final session row compared with DuckDB's
sessionization of the same records read back from Kafka (joined: as of the same user versions).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass

from clickstream_common.contracts import parse_event_time
from confluent_kafka import Producer

from tests.faults.conftest import DedicatedBrokers, FaultPipeline
from tests.faults.report import SessionRow
from tests.support.groups import end_offsets, wait_committed
from tests.support.kafka_clients import create_topic
from tests.support.oracle import KafkaRow, read_topic
from tests.support.pipeline import Names
from tests.support.services import Service
from tests.support.sessions import (
    DAY,
    JOINED_SESSIONS_SQL,
    MINUTE,
    SESSIONS_SQL,
    Action,
    Session,
    as_of_platinum,
    expected_sessions,
    read_outcome,
    user_record,
    user_versions,
    vip_actions,
)

PARTITIONS = 4
USERS = 400
KNOWN = 360  # joined: the other 40 users are never seen, their clicks wait, then are unmatched
RATE = 600  # VIP actions (joined: clicks) per second
FAULT_SHARE = 0.3  # of the actions out before the fault


@dataclass
class Judgement:
    expected: int
    details: list[str]  # the first few differences, for the failure message
    missing: int  # expected sessions with no final row, or one counting fewer clicks
    double_counted: int  # a final counting more clicks than the session had
    wrong: int  # a final that is no expected session otherwise (boundaries, other counts)
    duplicate_finals: int  # the same final row written more than once


class SessionsRun:
    def __init__(
        self,
        brokers: DedicatedBrokers,
        pipeline: FaultPipeline,
        names: Names,
        row: SessionRow,
        delivery: str,
        static_member: str | None = None,
        joined: bool = False,
    ) -> None:
        self.brokers, self.pipeline, self.names, self.row = brokers, pipeline, names, row
        self.joined = joined
        self.source = names.clicks if joined else names.vip
        self.output = f"{names.run}.vip-session"
        self.group = f"{names.run}.sessions"
        one_stream = {"ENRICHER_QUERY": SESSIONS_SQL, "CLICKS_STREAM": "VipActions"}
        self.env = {
            **(
                {"ENRICHER_QUERY": JOINED_SESSIONS_SQL, "JOIN_GRACE_MS": "1000"}
                if joined
                else one_stream
            ),
            "CLICKS_TOPIC": self.source,
            "OUTPUT_STREAM": "VipSessions",
            "OUTPUT_TOPIC": self.output,
            "CONSUMER_GROUP": self.group,
            "ENRICHER_DELIVERY": delivery,
            "IDLE_TIMEOUT_MS": "3000",
        }
        if static_member:
            self.env["KAFKA_GROUP_INSTANCE_ID"] = static_member
            row.notes.append(f"static membership (KAFKA_GROUP_INSTANCE_ID={static_member})")
        # Recent enough for the brokers' retention (user records carry their valid-from time).
        self.start_ms = (int(time.time() * 1000) - 2 * DAY) // MINUTE * MINUTE
        self.actions = vip_actions(seed=11, users=USERS, start_ms=self.start_ms)
        self.sent = 0
        self._producer_thread: threading.Thread | None = None
        self.enrichers: list[Service] = []

    def start(self) -> SessionsRun:
        if self.joined:
            self._start_user_state()
        self.enrichers.append(self.start_enricher("sessions"))
        self.enrichers[0].wait_ready()
        self._producer_thread = threading.Thread(target=self._produce, daemon=True)
        self._producer_thread.start()
        return self

    def start_enricher(self, log_name: str, instance: str = "1") -> Service:
        """`instance` names its transactional id: a replacement takes its predecessor's (and
        fences it), a replica running beside it needs its own."""
        return self.pipeline.start(
            "enricher",
            log_name=log_name,
            TOPIC_PARTITIONS="4",
            TRANSACTIONAL_ID=f"{self.group}-{instance}",
            **self.env,
        )

    def _start_user_state(self) -> None:
        create_topic(self.brokers.kafka, self.names.users, PARTITIONS, compact=True)
        producer = Producer({"bootstrap.servers": self.brokers.kafka})
        for user_id, level, valid_from in user_versions(self.start_ms, KNOWN):
            producer.produce(
                self.names.users,
                user_record(user_id, level),
                user_id.encode(),
                timestamp=valid_from,
            )
        producer.flush(60)
        self.env["USER_STATE_URL"] = self.pipeline.start_user_state().url

    def _value(self, action: Action) -> bytes:
        return action.click() if self.joined else action.value()

    def _produce(self) -> None:
        # Quiet: its reconnects while the broker restarts are expected (log_level 2: critical).
        producer = Producer(
            {"bootstrap.servers": self.brokers.kafka, "linger.ms": 5, "log_level": 2}
        )
        started = time.monotonic()
        for index, action in enumerate(self.actions):
            delay = started + index / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.produce(self.source, self._value(action), action.user_id.encode())
            producer.poll(0)
            self.sent = index + 1
        producer.flush(120)

    def wait_fault_point(self, share: float = FAULT_SHARE) -> None:
        """Once `share` of the actions are out."""
        while self.sent < len(self.actions) * share:
            self.pipeline.check_alive()
            time.sleep(0.05)

    def flowing_after(self, since: float, services: list[Service], timeout: float = 120) -> float:
        """Seconds from `since` until `services` write session rows again: their rows counters
        grow past their sum at this call (one not answering yet counts 0). Not the output's end
        offsets: those also grow by the abort markers a replacement's fencing writes."""

        def rows() -> float:
            total = 0.0
            for service in services:
                with contextlib.suppress(OSError):
                    total += service.metric_if_present("enricher_window_rows_total") or 0
            return total

        before = rows()
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.pipeline.check_alive()
            if rows() > before:
                return time.time() - since
            time.sleep(0.1)
        raise AssertionError(f"no session row produced {timeout} s after the fault")

    def settle(self) -> None:
        """All actions out, then one far-future click on every partition so the watermark
        passes every session; until the group has committed the whole input."""
        assert self._producer_thread is not None
        self._producer_thread.join(300)
        producer = Producer({"bootstrap.servers": self.brokers.kafka})
        last = max(a.event_ms for a in self.actions) + 24 * 60 * MINUTE
        for p in range(PARTITIONS):
            user = f"zz-sentinel-{p}"
            sentinel = self._value(Action(user, last, "view", 0))
            producer.produce(self.source, sentinel, user.encode(), partition=p)
        producer.flush(60)
        kafka = self.brokers.kafka
        wait_committed(
            kafka,
            self.group,
            self.source,
            end_offsets(kafka, self.source),
            check=self.pipeline.check_alive,
        )

    def judge(self, exactly_once: bool) -> Judgement:
        kafka = self.brokers.kafka
        late = (
            {
                (int(r.headers["dlq.source.partition"]), int(r.headers["dlq.source.offset"]))
                for r in read_topic(kafka, f"{self.source}.late")
            }
            if sum(end_offsets(kafka, f"{self.source}.late").values())
            else set()
        )
        applied = self._applied(read_topic(kafka, self.source), late)
        expected = expected_sessions(applied)
        rows = [r for r in read_topic(kafka, self.output) if b"zz-sentinel" not in (r.key or b"")]
        outcome = read_outcome(rows)
        judgement = _compare(expected, outcome.finals)
        row = self.row
        row.actions = len(self.actions)
        row.expected = judgement.expected
        row.missing = judgement.missing
        row.double_counted = judgement.double_counted
        row.wrong = judgement.wrong
        row.duplicate_finals = judgement.duplicate_finals
        row.notes.append(f"{len(late)} late")
        if outcome.problems:
            row.notes.append(f"{len(outcome.problems)} update rows inconsistent with the finals")
        print(f"\n{row.label}: {judgement}")

        assert judgement.missing == 0, judgement
        assert judgement.wrong == 0, judgement
        if exactly_once:
            assert judgement.double_counted == 0, judgement
            assert judgement.duplicate_finals == 0, judgement
            assert outcome.problems == [], outcome.problems[:5]
        return judgement

    def _applied(self, rows: list[KafkaRow], late: set[tuple[int, int]]) -> list[Action]:
        """The actions the query aggregates: all but the late ones and the sentinels; joined,
        the clicks whose user is PLATINUM at their time."""
        rows = [
            r
            for r in rows
            if (r.partition, r.offset) not in late and not (r.key or b"").startswith(b"zz-sentinel")
        ]
        if self.joined:
            return as_of_platinum(read_topic(self.brokers.kafka, self.names.users), rows)[0]
        return _actions(rows)

    def stop(self) -> None:
        for service in reversed(self.pipeline.services):
            if service.process is not None and service.process.poll() is None:
                assert self.pipeline.terminate(service) == 0, service.log_tail()


def _actions(rows: list[KafkaRow]) -> list[Action]:
    out = []
    for row in rows:
        assert row.value is not None
        obj = json.loads(row.value)
        out.append(
            Action(obj["user_id"], parse_event_time(obj["event_time"]), obj["action"], obj["page"])
        )
    return out


def _compare(expected: set[Session], finals: list[Session]) -> Judgement:
    duplicates = sum(n - 1 for n in Counter(finals).values())
    by_identity = {(f[0], f[1]): f for f in finals}
    missing = double = wrong = 0
    details: list[str] = []
    for session in sorted(expected):
        final = by_identity.pop((session[0], session[1]), None)
        if final == session:
            continue
        if len(details) < 5:
            details.append(f"expected {session}, final {final}")
        if final is None or final[3] < session[3]:
            missing += 1
        elif final[3] > session[3]:
            double += 1
        else:
            wrong += 1
    wrong += len(by_identity)
    details += [f"unexpected final {f}" for f in list(by_identity.values())[:5]]
    return Judgement(len(expected), details, missing, double, wrong, duplicates)
