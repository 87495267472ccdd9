"""An independent answer to "which VipActions should arrive": DuckDB runs the seed's INSERT over
the users and clicks read back from Kafka. Validity is re-stated here from docs/ARCHITECTURE.md
§ Data contracts rather than imported, so a bug in the services' own decoding cannot hide itself.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
from clickstream_enricher.query import DEFAULT_QUERY
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from tests.support.eventually import eventually
from tests.support.kafka_clients import consumer

Row = tuple[str, str, int, str, str]


@dataclass(frozen=True)
class KafkaRow:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: dict[str, str] = field(default_factory=dict)


def read_topic(
    bootstrap: str, topic: str, timeout: float = 60, isolation_level: str = "read_committed"
) -> list[KafkaRow]:
    """Every record of a topic, up to the end offsets seen when called.

    read_committed (librdkafka's default, stated here) hides records of aborted or open
    transactions; a transactional topic ends in a commit marker that is never delivered, so a
    partition also counts as read once the consumer's position has passed its end offset.
    """
    with consumer(bootstrap, "oracle", **{"isolation.level": isolation_level}) as reader:
        partitions = sorted(reader.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        rows: list[KafkaRow] = []
        done = {p for p, end in ends.items() if end == 0}

        def read_to_the_end() -> bool:
            for message in reader.consume(1000, 0.5):
                if message.error():
                    continue
                headers = {k: (v or b"").decode() for k, v in (message.headers() or [])}
                rows.append(
                    KafkaRow(
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value(),
                        message.timestamp()[1],
                        headers,
                    )
                )
                if message.offset() + 1 >= ends[message.partition()]:
                    done.add(message.partition())
            waiting = [TopicPartition(topic, p) for p in partitions if p not in done]
            for tp in reader.position(waiting) if waiting else []:
                if tp.offset >= ends[tp.partition]:
                    done.add(tp.partition)
            return len(done) == len(partitions)

        if len(done) < len(partitions):
            eventually(
                read_to_the_end,
                timeout=timeout,
                interval=0,
                message=f"could not read {topic} to its end",
            )
        return rows


def iso_millis(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}Z"


def parse_click(row: KafkaRow) -> dict[str, object] | None:
    """The click as docs/ARCHITECTURE.md § Data contracts defines it, or None for the DLQ."""
    if row.key is None:
        return None
    try:
        value = json.loads(row.value) if row.value is not None else None
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    text_fields = ("user_id", "action", "device", "agent")
    if not all(isinstance(value.get(f), str) for f in text_fields) or not value["user_id"]:
        return None
    page = value.get("page")
    if not isinstance(page, int) or isinstance(page, bool):
        return None
    event_time = value.get("event_time", row.timestamp_ms)
    if not isinstance(event_time, int) or isinstance(event_time, bool) or event_time < 0:
        return None
    if row.value is not None and len(row.value) > 64 * 1024:
        return None
    return {**value, "event_time": iso_millis(event_time)}


def latest_users(rows: list[KafkaRow]) -> dict[str, dict[str, str] | None]:
    users: dict[str, dict[str, str] | None] = {}
    for row in sorted(rows, key=lambda r: (r.timestamp_ms, r.partition, r.offset)):
        if row.key is None:
            continue
        if row.value is None:
            users[row.key.decode()] = None
            continue
        try:
            value = json.loads(row.value)
        except ValueError:
            continue
        if isinstance(value, dict) and all(
            isinstance(value.get(f), str) for f in ("user_id", "name", "level")
        ):
            users[value["user_id"]] = {**value, "level": value["level"].upper()}
    return users


@dataclass
class Expectation:
    vip_rows: Counter[Row]
    invalid_clicks: set[tuple[int, int]]
    unmatched_clicks: set[tuple[int, int]]
    clicks: int


def expected_outcome(user_rows: list[KafkaRow], click_rows: list[KafkaRow]) -> Expectation:
    users = {k: v for k, v in latest_users(user_rows).items() if v is not None}
    valid: list[tuple[KafkaRow, dict[str, object]]] = []
    invalid: set[tuple[int, int]] = set()
    for row in click_rows:
        click = parse_click(row)
        if click is None:
            invalid.add((row.partition, row.offset))
        else:
            valid.append((row, click))
    db = duckdb.connect()
    db.execute("CREATE TABLE Users (user_id VARCHAR, name VARCHAR, level VARCHAR)")
    db.execute(
        "CREATE TABLE Clicks (user_id VARCHAR, page BIGINT, action VARCHAR, event_time VARCHAR)"
    )
    db.executemany(
        "INSERT INTO Users VALUES (?, ?, ?)",
        [(u["user_id"], u["name"], u["level"]) for u in users.values()],
    )
    db.executemany(
        "INSERT INTO Clicks VALUES (?, ?, ?, ?)",
        [(c["user_id"], c["page"], c["action"], c["event_time"]) for _, c in valid],
    )
    db.execute(
        "CREATE TABLE VipActions (user_id VARCHAR, name VARCHAR, page BIGINT, action VARCHAR,"
        " event_time VARCHAR)"
    )
    db.execute(DEFAULT_QUERY)  # the seed's statement, verbatim
    vip = Counter(tuple(r) for r in db.execute("SELECT * FROM VipActions").fetchall())
    unmatched = {(row.partition, row.offset) for row, c in valid if c["user_id"] not in users}
    return Expectation(vip, invalid, unmatched, len(click_rows))


@dataclass
class Comparison:
    expected: int
    received: int
    missing: int
    unexpected: int
    duplicated: int

    def line(self) -> str:
        return (
            f"expected={self.expected} received={self.received} missing={self.missing} "
            f"unexpected={self.unexpected} duplicated={self.duplicated}"
        )


def compare(expected: Counter[Row], bodies: list[bytes]) -> Comparison:
    """Duplicates are messages whose event_id was already seen; the rest must equal the oracle."""
    seen: set[str] = set()
    distinct: Counter[Row] = Counter()
    duplicated = 0
    for body in bodies:
        value = json.loads(body)
        if value["event_id"] in seen:
            duplicated += 1
            continue
        seen.add(value["event_id"])
        distinct[
            (value["user_id"], value["name"], value["page"], value["action"], value["event_time"])
        ] += 1
    return Comparison(
        expected=sum(expected.values()),
        received=len(bodies),
        missing=sum((expected - distinct).values()),
        unexpected=sum((distinct - expected).values()),
        duplicated=duplicated,
    )
