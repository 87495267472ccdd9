"""A windowed query over Clicks JOIN Users against in-memory stand-ins of Kafka and user-state:
as-of versions, clicks waiting for their user (and their user's later clicks behind them),
unmatched and left-joined clicks, and restarts past a waiting click in both delivery modes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from clickstream_common.contracts import User
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord, PartitionKey, Position, Record
from clickstream_enricher.aggregating import WindowProcessor, WindowTopics
from clickstream_enricher.directory import UserMatch
from clickstream_enricher.pending import PendingClicks
from clickstream_enricher.query import compile_query
from clickstream_enricher.window_inputs import JoinedClicks, JoinTopics
from clickstream_enricher.windows.operator import WindowOperator
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.watermarks import Watermarks
from clickstream_user_state.store import UserStore

MINUTE = 60_000
T0 = 1_764_000_000_000
SESSIONS = """
    SELECT Clicks.user_id, Users.level, COUNT(*) AS clicks,
           COUNT(*) FILTER (WHERE Clicks.action = 'checkout') AS checkouts
    FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id
    WHERE Users.level = 'PLATINUM'
    GROUP BY SESSION(Clicks.event_time, INTERVAL '30' MINUTE), Clicks.user_id, Users.level"""
TOPICS = WindowTopics(output="out", dead_letter="click.dlq", late="click.late")


def click(
    offset: int, user: str, minute: float, action: str = "view", key: str | None = None
) -> Record:
    value = {
        "user_id": user,
        "page": offset,
        "action": action,
        "device": "mobile",
        "agent": "a",
        "event_time": T0 + int(minute * MINUTE),
    }
    return Record("click", 0, offset, (key or user).encode(), json.dumps(value).encode(), 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Users:
    """user-state's own store behind the enricher's lookup interface."""

    def __init__(self) -> None:
        self.store = UserStore()

    def add(self, user_id: str, level: str, minute: float = -600) -> None:
        self.store.apply(user_id, User(user_id, user_id.title(), level), T0 + int(minute * MINUTE))

    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        return [
            UserMatch.of(r.found, r.user) for r in (self.store.lookup(uid, at) for uid, at in keys)
        ]


class Kafka:
    """What was committed, surviving a crash of the processor; `crash_at` makes the n-th
    delivery fail before anything of it is written."""

    def __init__(self, exactly_once: bool = False) -> None:
        self.exactly_once = exactly_once
        self.crash_at: int | None = None
        self.deliveries = 0
        self.records: list[OutRecord] = []
        self.positions: dict[PartitionKey, Position] = {}

    def start(self) -> None:
        pass

    def commit_batch(
        self, outputs: Sequence[OutRecord], positions: Mapping[PartitionKey, Position]
    ) -> None:
        self.deliveries += 1
        if self.crash_at is not None and self.deliveries >= self.crash_at:
            raise RuntimeError("killed")
        self.records += outputs
        self.positions.update(positions)

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        if not self.exactly_once:
            return {}
        return {p: pos for p, pos in self.positions.items() if p in partitions}

    def durable_offsets(self) -> Mapping[PartitionKey, int]:
        return {p: pos.offset for p, pos in self.positions.items()}

    topic = "changelog"

    def read(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]:
        for record in self.records:
            if record.topic == "changelog" and record.partition == partition:
                assert record.key is not None
                yield record.key, record.value

    def on(self, topic: str) -> list[dict[str, object]]:
        return [json.loads(r.value or b"null") for r in self.records if r.topic == topic]

    def reasons(self, topic: str) -> list[str]:
        return [dict(r.headers)["dlq.error"] for r in self.records if r.topic == topic]

    def replay(self, records: list[Record]) -> list[list[Record]]:
        """What a restarted consumer reads: every record from the committed offset on."""
        start = self.positions.get(("click", 0), Position(0)).offset
        return [[r for r in records if r.offset >= start]]


class Source:
    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        raise AssertionError("the committer commits")


def processor(
    kafka: Kafka,
    users: Users,
    source: Source,
    *,
    sql: str = SESSIONS,
    grace: float = 5.0,
    clock: Clock | None = None,
) -> WindowProcessor:
    query = compile_query(sql)
    assert isinstance(query, AggregateQuery) and query.join is not None
    clock = clock or Clock()
    made = WindowProcessor(
        source=source,
        committer=kafka,
        query=query,
        input_rows=JoinedClicks(
            users=users,
            resumer=kafka,
            join=query.join,
            as_of=True,
            pending=PendingClicks(grace, 100),
            topics=JoinTopics(dead_letter="click.dlq", unmatched="click.unmatched"),
            clock=clock,
        ),
        operator=WindowOperator(query, Watermarks(0, 60_000)),
        changelog=kafka,
        topics=TOPICS,
        metrics=Metrics("enricher"),
        clock=clock,
        sleep=clock.advance,
    )
    made.on_assign([("click", 0)])
    return made


def close_all(run: WindowProcessor, source: Source, offset: int) -> None:
    """A click of someone else far ahead: the watermark passes every session."""
    source.batches.append([click(offset, "zz", 24 * 60)])
    run.step(0)


def finals(kafka: Kafka, user: str) -> list[dict[str, object]]:
    return [r for r in kafka.on("out") if r["final"] and r["user_id"] == user]


def test_clicks_are_joined_as_of_their_time_and_grouped_by_either_side() -> None:
    users = Users()
    users.add("p", "PLATINUM")
    users.add("up", "GOLD")
    users.add("up", "PLATINUM", minute=10)  # upgraded mid-visit
    users.add("zz", "PLATINUM")
    kafka = Kafka()
    batch = [
        click(0, "p", 0),
        click(1, "up", 5),
        click(2, "p", 3, "checkout"),
        click(3, "up", 12, "checkout"),
        click(4, "up", 14),
    ]
    source = Source([batch])
    run = processor(kafka, users, source)
    run.step(0)
    close_all(run, source, 5)
    assert [(r["level"], r["clicks"], r["checkouts"]) for r in finals(kafka, "p")] == [
        ("PLATINUM", 2, 1)
    ]
    # The GOLD click before the upgrade is not a PLATINUM user's click.
    (up,) = finals(kafka, "up")
    assert (up["clicks"], up["checkouts"]) == (2, 1)


def test_a_click_waits_for_its_user_and_the_users_later_clicks_wait_behind_it() -> None:
    users = Users()
    users.add("p", "PLATINUM")
    users.add("zz", "PLATINUM")
    kafka = Kafka()
    clock = Clock()
    source = Source([[click(0, "new", 0), click(1, "p", 1)]])
    run = processor(kafka, users, source, clock=clock)
    run.step(0)
    run.step(0)  # retried, still unknown: the next retry is due in 0.1 s
    assert kafka.positions[("click", 0)] == Position(0)  # pinned by the waiting click
    users.add("new", "PLATINUM")
    # The user's next click is answered at once, but must not overtake the waiting one.
    source.batches.append([click(2, "new", 2, "checkout")])
    run.step(0)  # before the waiting click's retry is due
    assert kafka.positions[("click", 0)] == Position(0)
    clock.advance(0.2)
    run.step(0)
    assert kafka.positions[("click", 0)] == Position(3)
    close_all(run, source, 3)
    (new,) = finals(kafka, "new")
    assert (new["clicks"], new["checkouts"]) == (2, 1)
    assert kafka.on("click.unmatched") == []


def test_unknown_after_grace_and_absent_users_are_unmatched_with_the_reason() -> None:
    users = Users()
    users.add("later", "PLATINUM", minute=60)  # first seen after the click
    clock = Clock()
    kafka = Kafka()
    source = Source([[click(0, "ghost", 0), click(1, "later", 0)]])
    run = processor(kafka, users, source, clock=clock)
    run.step(0)
    clock.advance(6)
    run.step(0)
    assert kafka.reasons("click.unmatched") == [
        "user absent at event time (deleted, or first seen later)",
        "user unknown after 5s grace",
    ]
    assert kafka.positions[("click", 0)] == Position(2)


def test_a_left_join_counts_clicks_without_a_user_under_a_null_level() -> None:
    sql = """SELECT Clicks.user_id, Users.level, COUNT(*) AS clicks
             FROM Clicks LEFT JOIN Users ON Clicks.user_id = Users.user_id
             GROUP BY SESSION(Clicks.event_time, INTERVAL '30' MINUTE), Clicks.user_id,
                      Users.level"""
    users = Users()
    users.add("zz", "PLATINUM")
    kafka = Kafka()
    source = Source([[click(0, "ghost", 0), click(1, "ghost", 2)]])
    run = processor(kafka, users, source, sql=sql, grace=0)
    run.step(0)
    close_all(run, source, 2)
    assert [(r["level"], r["clicks"]) for r in finals(kafka, "ghost")] == [(None, 2)]


def test_a_click_keyed_by_another_user_is_dead_lettered() -> None:
    users = Users()
    users.add("p", "PLATINUM")
    kafka = Kafka()
    processor(kafka, users, Source([[click(0, "p", 0, key="q")]])).step(0)
    assert kafka.reasons("click.dlq") == ["key does not match user_id"]


def _crash_past_a_waiting_click(exactly_once: bool) -> Kafka:
    """ghost waits at offset 1, pinning the commit; the clicks after it are counted or
    dead-lettered; the process dies in the next batch's delivery (exactly once nothing of it
    lands; at least once its rows did), then a new one restarts from the commit, ghost arrives,
    and the watermark closes everything."""
    users = Users()
    users.add("p", "PLATINUM")
    users.add("zz", "PLATINUM")
    users.add("bad", "PLATINUM")
    records = [
        click(0, "p", 0),
        click(1, "ghost", 1),
        click(2, "p", 2),
        click(3, "nobody", 60, key="x"),
        click(4, "p", 3, "checkout"),
    ]
    kafka = Kafka(exactly_once)
    first = processor(kafka, users, Source([records[:4], records[4:]]))
    first.step(0)
    kafka.crash_at = kafka.deliveries + 1 if exactly_once else kafka.deliveries + 2
    try:
        first.step(0)
        raise AssertionError("must crash")
    except RuntimeError:
        pass
    kafka.crash_at = None
    users.add("ghost", "PLATINUM")
    source = Source(kafka.replay(records))
    second = processor(kafka, users, source)
    second.step(0)
    close_all(second, source, 5)
    return kafka


def test_exactly_once_a_restart_past_a_waiting_click_counts_and_reports_each_once() -> None:
    kafka = _crash_past_a_waiting_click(exactly_once=True)
    assert [(r["clicks"], r["checkouts"]) for r in finals(kafka, "p")] == [(3, 1)]
    assert [r["clicks"] for r in finals(kafka, "ghost")] == [1]
    assert kafka.reasons("click.dlq") == ["key does not match user_id"]


def test_at_least_once_a_restart_past_a_waiting_click_counts_each_once() -> None:
    kafka = _crash_past_a_waiting_click(exactly_once=False)
    assert {(r["clicks"], r["checkouts"]) for r in finals(kafka, "p")} == {(3, 1)}
    assert {r["clicks"] for r in finals(kafka, "ghost")} == {1}
    # Side outputs of the records past the waiting click repeat: at least once.
    assert set(kafka.reasons("click.dlq")) == {"key does not match user_id"}


def test_clicks_that_reach_no_window_still_move_the_watermark() -> None:
    """A GOLD user's click (filtered out) and an unknown user's (unmatched) are input all the
    same: the watermark is the input's, so either closes the PLATINUM user's session."""
    for ahead in (click(1, "g", 24 * 60), click(1, "ghost", 24 * 60)):
        users = Users()
        users.add("p", "PLATINUM")
        users.add("g", "GOLD")
        kafka = Kafka()
        source = Source([[click(0, "p", 0)], [ahead]])
        run = processor(kafka, users, source, grace=0)
        run.step(0)
        run.step(0)
        assert [r["clicks"] for r in finals(kafka, "p")] == [1], ahead
