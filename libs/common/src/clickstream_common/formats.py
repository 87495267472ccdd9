"""The value format of every topic, one switch (`VALUE_FORMAT`): the port services code against.

JSON is the default and needs nothing else; Avro (`clickstream_common.avro`) needs a schema
registry. Either way a record's value becomes the same object for the contract's checks, and an
output row the same bytes whichever service writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from clickstream_common.contracts import JsonObjects, ObjectReader, encode_json
from clickstream_common.records import Record

RowWriter = Callable[[Mapping[str, Any]], bytes]


class RowRejected(ValueError):
    """An output row its stream's schema cannot carry; the message says which field and why."""


class ValueFormat(ObjectReader, Protocol):
    name: str

    def writer(self, topic: str, stream: str, columns: Sequence[str] | None = None) -> RowWriter:
        """How rows of `stream` are written to `topic`. Made at start: for Avro it reads the
        stream's schema and checks that it can carry `columns` (the query's output), so a
        mismatch stops the service there instead of failing row by row."""
        ...

    def connect(self) -> None:
        """Register the schemas of the writers made so far (Avro), waiting for as long as the
        registry cannot be reached; a schema the registry refuses raises. Services call it
        first thing in `run`, so a refused schema stops them at start."""
        ...

    def json_body(self, record: Record, row: dict[str, Any]) -> bytes:
        """A record `read` returned `row` for, in the JSON wire form (RabbitMQ's bodies)."""
        ...

    def ready(self) -> bool:
        """False while what the format needs (a schema registry) cannot be reached."""
        ...


class JsonFormat(JsonObjects):
    name = "json"

    def writer(self, topic: str, stream: str, columns: Sequence[str] | None = None) -> RowWriter:
        return encode_json

    def connect(self) -> None:
        pass

    def json_body(self, record: Record, row: dict[str, Any]) -> bytes:
        return record.value if record.value is not None else encode_json(row)

    def ready(self) -> bool:
        return True


JSON = JsonFormat()
