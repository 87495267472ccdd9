"""The windowed query's loop against in-memory stand-ins of Kafka: what reaches the output, the
changelog, .late and the DLQ, in which order at least once, and that a crash at any point
between them loses no session."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

import pytest
from clickstream_common.contracts import format_event_time
from clickstream_common.metrics import Metrics
from clickstream_common.records import OutRecord, PartitionKey, Position, Record
from clickstream_enricher.aggregating import StateUnreadable, WindowProcessor, WindowTopics
from clickstream_enricher.query import StreamNames, compile_query
from clickstream_enricher.window_inputs import StreamRows
from clickstream_enricher.windows.operator import WindowOperator
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.watermarks import Watermarks

MINUTE = 60_000
T0 = 1_764_000_000_000
QUERY = """SELECT user_id, COUNT(*) AS clicks FROM VipActions
           GROUP BY SESSION(event_time, INTERVAL '30' MINUTE), user_id"""
TOPICS = WindowTopics(output="out", dead_letter="in.dlq", late="in.late")


def action(offset: int, user: str, minute: float) -> Record:
    value = {"user_id": user, "event_time": format_event_time(T0 + int(minute * MINUTE))}
    return Record("in", 0, offset, user.encode(), json.dumps(value).encode(), 0)


class Source:
    def __init__(self, batches: list[list[Record]]) -> None:
        self.batches = batches

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None:
        raise AssertionError("the committer commits")


class Kafka:
    """What was acknowledged, surviving a crash of the processor; `crash_at` makes the n-th
    delivery fail before anything of it is written."""

    def __init__(self, exactly_once: bool = False, crash_at: int | None = None) -> None:
        self.exactly_once = exactly_once
        self.crash_at = crash_at
        self.calls: list[tuple[list[str], dict[PartitionKey, Position]]] = []
        self.records: list[OutRecord] = []
        self.committed: dict[PartitionKey, int] = {}

    def start(self) -> None:
        pass

    def commit_batch(
        self, outputs: Sequence[OutRecord], positions: Mapping[PartitionKey, Position]
    ) -> None:
        if self.crash_at is not None and len(self.calls) == self.crash_at:
            raise RuntimeError("killed")
        self.calls.append((sorted({r.topic for r in outputs}), dict(positions)))
        self.records += outputs
        self.committed.update({p: pos.offset for p, pos in positions.items()})

    def resume(self, partitions: Sequence[PartitionKey]) -> dict[PartitionKey, Position]:
        return {}

    def durable_offsets(self) -> Mapping[PartitionKey, int]:
        return self.committed

    # the changelog port, read from what was acknowledged
    topic = "changelog"

    def read(self, partition: int) -> Iterator[tuple[bytes, bytes | None]]:
        for record in self.records:
            if record.topic == "changelog" and record.partition == partition:
                assert record.key is not None
                yield record.key, record.value

    def on(self, topic: str) -> list[dict[str, object]]:
        return [json.loads(r.value or b"null") for r in self.records if r.topic == topic]


def processor(kafka: Kafka, batches: list[list[Record]], sql: str = QUERY) -> WindowProcessor:
    query = compile_query(sql, StreamNames(clicks="VipActions"))
    assert isinstance(query, AggregateQuery)
    made = WindowProcessor(
        source=Source(batches),
        committer=kafka,
        query=query,
        input_rows=StreamRows("in.dlq"),
        operator=WindowOperator(query, Watermarks(0, 60_000)),
        changelog=kafka,
        topics=TOPICS,
        metrics=Metrics("enricher"),
    )
    made.on_assign([("in", 0)])
    return made


def test_at_least_once_the_rows_are_acknowledged_before_the_changelog() -> None:
    kafka = Kafka()
    processor(kafka, [[action(0, "u1", 0), action(1, "u2", 60)]]).step(0)
    assert kafka.calls == [
        (["out"], {}),
        (["changelog"], {("in", 0): Position(2)}),
    ]
    assert [(r["clicks"], r["final"]) for r in kafka.on("out")] == [(1, True), (1, False)]


def test_exactly_once_everything_is_one_transaction() -> None:
    kafka = Kafka(exactly_once=True)
    processor(kafka, [[action(0, "u1", 0), action(1, "u2", 60)]]).step(0)
    assert kafka.calls == [(["changelog", "out"], {("in", 0): Position(2)})]


def test_a_crash_between_the_rows_and_the_changelog_repeats_a_row_and_loses_none() -> None:
    batch = [action(0, "u1", 0), action(1, "u1", 5), action(2, "u2", 60)]
    kafka = Kafka(crash_at=1)  # the rows are acknowledged, then the process dies
    try:
        processor(kafka, [list(batch)]).step(0)
        raise AssertionError("must crash")
    except RuntimeError:
        pass
    kafka.crash_at = None
    processor(kafka, [list(batch)]).step(0)  # restored from the changelog, the batch re-read
    finals = [r for r in kafka.on("out") if r["final"]]
    assert finals and all(r == finals[0] for r in finals)
    assert finals[0]["clicks"] == 2


def test_a_crash_after_the_changelog_skips_the_replayed_records() -> None:
    first = [action(0, "u1", 0), action(1, "u1", 5)]
    kafka = Kafka()
    processor(kafka, [first]).step(0)
    kafka.committed.clear()  # the offsets' commit never landed
    processor(kafka, [first, [action(2, "u2", 60)]]).step(0)
    restored = processor(kafka, [[action(2, "u2", 60)]])
    restored.step(0)
    finals = [r for r in kafka.on("out") if r["final"] and r["user_id"] == "u1"]
    assert [r["clicks"] for r in finals] == [2]


def test_late_and_bad_records_go_to_their_topics() -> None:
    kafka = Kafka()
    bad = Record("in", 0, 2, b"u3", b"{", 0)
    odd = Record("in", 0, 3, b"u4", b'{"user_id": "u4", "event_time": 1, "name": {"a": 1}}', 0)
    query = """SELECT user_id, name, COUNT(*) AS clicks FROM VipActions
               GROUP BY SESSION(event_time, INTERVAL '30' MINUTE), user_id, name"""
    run = processor(kafka, [[action(0, "u1", 100)], [action(1, "u2", 0)], [bad, odd]], query)
    for _ in range(3):
        run.step(0)
    late = [r for r in kafka.records if r.topic == "in.late"]
    dlq = [r for r in kafka.records if r.topic == "in.dlq"]
    assert len(late) == 1 and dict(late[0].headers)["dlq.error"].startswith("late:")
    reasons = [dict(r.headers)["dlq.error"] for r in dlq]
    assert len(reasons) == 2 and reasons[0].startswith("not JSON")
    assert reasons[1] == "group key value is a JSON dict, not a value"
    assert kafka.committed == {("in", 0): 4}


def test_state_another_version_wrote_stops_the_start_naming_the_changelog() -> None:
    kafka = Kafka()
    kafka.records.append(OutRecord("changelog", b'["u1"]', b'{"format": "old"}', partition=0))
    with pytest.raises(StateUnreadable, match=r"changelog changelog partition 0 .* QUERY_NAME"):
        processor(kafka, [])
