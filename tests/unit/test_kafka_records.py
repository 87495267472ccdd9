"""The Kafka adapter builds Records positionally (for speed): the fields must land by name."""

from __future__ import annotations

from clickstream_common.kafka.messages import to_record
from clickstream_common.records import Record


class FakeMessage:
    """What `to_record` reads of a confluent_kafka.Message."""

    def __init__(self, headers: list[tuple[str, bytes | None]] | None) -> None:
        self._headers = headers

    def topic(self) -> str:
        return "users"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return 42

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers


def test_every_field_lands_by_name() -> None:
    record = to_record(FakeMessage([("a", b"1"), ("b", None)]))  # type: ignore[arg-type]
    assert type(record) is Record
    assert record == Record(
        topic="users",
        partition=3,
        offset=42,
        key=b"k",
        value=b"v",
        timestamp_ms=1_700_000_000_000,
        headers=(("a", b"1"), ("b", b"")),
    )
    assert record.timestamp_ms == 1_700_000_000_000


def test_no_headers_is_an_empty_tuple() -> None:
    assert to_record(FakeMessage(None)).headers == ()  # type: ignore[arg-type]
