"""Avro values in the Confluent wire format: a zero byte, the schema id (4 bytes, big-endian),
then the Avro binary encoding of the record (TopicNameStrategy: subject `<topic>-value`).

Records are decoded with fastavro against their writer's schema, fetched from the registry once
per schema id and kept; nothing per record reaches the registry. Decoding against the writer's
schema, not a reader schema of our own, is what lets a producer add a field without any consumer
noticing: the contract reads the fields it knows.

`confluent_kafka`'s AvroDeserializer produces the same bytes and rows (tests/unit/test_avro.py
checks both ways), at four times the cost per record here (28 us against 7): it builds a
serialization context, resolves rules and converts logical types on every call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from clickstream_common.avro import SCHEMA_DIR
from clickstream_common.avro.errors import SchemaFileError
from clickstream_common.avro.registry import SchemaRegistry
from clickstream_common.avro.schemas import PreparedSchema, prepare, stream_schema
from clickstream_common.contracts import (
    MAX_RECORD_BYTES,
    BadRecord,
    encode_json,
    format_event_time,
    parse_event_time,
)
from clickstream_common.formats import RowRejected, RowWriter
from clickstream_common.records import Record

MAGIC = 0
HEADER_BYTES = 5
# Writer schemas kept; a registry holds a handful per topic, so this is never reached in use.
_MAX_SCHEMAS = 1024


class AvroFormat:
    name = "avro"

    def __init__(self, registry: SchemaRegistry, schema_dir: Path = SCHEMA_DIR) -> None:
        """`schema_dir`: where `<Stream>.avsc` files are read (the package's own by default)."""
        self.registry = registry
        self._schema_dir = schema_dir
        self._schemas: dict[int, PreparedSchema] = {}
        self._writers: list[_Writer] = []

    def read(
        self,
        record: Record,
        fields: frozenset[str] | None = None,
        max_bytes: int = MAX_RECORD_BYTES,
    ) -> dict[str, Any]:
        value = record.value
        if value is None:
            raise BadRecord("null value")
        if len(value) > max_bytes:
            raise BadRecord(f"oversized: {len(value)} bytes > {max_bytes}")
        if len(value) < HEADER_BYTES or value[0] != MAGIC:
            raise BadRecord(
                "not Avro in the Confluent wire format: "
                + (f"{len(value)} bytes" if len(value) < HEADER_BYTES else f"first byte {value[0]}")
                + " (expected a zero byte and a 4-byte schema id)"
            )
        schema_id = int.from_bytes(value[1:HEADER_BYTES], "big")
        schema = self._schemas.get(schema_id) or self._writer_schema(schema_id)
        stream = BytesIO(value)
        stream.seek(HEADER_BYTES)
        try:
            row = schemaless_reader(stream, schema.parsed, None)
        except Exception as exc:  # fastavro raises whatever the bytes lead it to
            reason = f"{type(exc).__name__}: {exc}"[:200]
            raise BadRecord(f"does not decode against schema id {schema_id}: {reason}") from None
        left = len(value) - stream.tell()
        if left:
            raise BadRecord(f"does not decode against schema id {schema_id}: {left} bytes left")
        return row  # type: ignore[return-value]  # a record schema: checked when fetched

    def _writer_schema(self, schema_id: int) -> PreparedSchema:
        text = self.registry.schema_text(schema_id)
        if text is None:
            raise BadRecord(f"unknown schema id {schema_id}: the registry has no such schema")
        try:
            schema = prepare(text)
        except Exception:  # fastavro's parse errors have no common base
            raise BadRecord(f"schema id {schema_id} is not an Avro schema") from None
        if not schema.fields:
            raise BadRecord(f"schema id {schema_id} is not an Avro record schema")
        self.remember(schema_id, schema)
        return schema

    def remember(self, schema_id: int, schema: PreparedSchema) -> None:
        if len(self._schemas) >= _MAX_SCHEMAS:
            self._schemas.clear()
        self._schemas[schema_id] = schema

    def writer(self, topic: str, stream: str, columns: Sequence[str] | None = None) -> RowWriter:
        schema = stream_schema(stream, self._schema_dir)
        if columns is not None:
            _check_columns(schema, columns, self._schema_dir / f"{stream}.avsc")
        writer = _Writer(self, f"{topic}-value", stream, schema)
        self._writers.append(writer)
        return writer

    def connect(self) -> None:
        self.registry.check()
        for writer in self._writers:
            writer.register()

    def json_body(self, record: Record, row: dict[str, Any]) -> bytes:
        assert record.value is not None  # `read` returned a row for it
        schema = self._schemas.get(int.from_bytes(record.value[1:HEADER_BYTES], "big"))
        if schema is not None and schema.timestamp_fields:
            row = dict(row)
            for name in schema.timestamp_fields:
                if row.get(name).__class__ is int:
                    try:
                        row[name] = format_event_time(row[name])
                    except (ValueError, OverflowError, OSError):
                        raise BadRecord(f"out of range: {name} ({row[name]} ms)") from None
        return encode_json(row)

    def ready(self) -> bool:
        return self.registry.reachable


class _Writer:
    """Rows of one stream to one topic. Its schema is registered by `AvroFormat.connect`, or at
    the latest by the first row written."""

    def __init__(self, avro: AvroFormat, subject: str, stream: str, schema: PreparedSchema) -> None:
        self._avro = avro
        self._subject = subject
        self._stream = stream
        self._schema = schema
        self._header: bytes | None = None
        self.schema_id: int | None = None

    def register(self) -> None:
        if self._header is None:
            schema_id = self._avro.registry.register(self._subject, self._schema.text)
            self._avro.remember(schema_id, self._schema)
            self.schema_id = schema_id
            self._header = bytes([MAGIC]) + schema_id.to_bytes(4, "big")

    def __call__(self, row: Mapping[str, Any]) -> bytes:
        if self._header is None:
            self.register()
        schema = self._schema
        if schema.timestamp_fields:
            row = _epoch_ms(row, schema.timestamp_fields)
        out = BytesIO()
        out.write(self._header or b"")
        try:
            schemaless_writer(out, schema.parsed, row)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise RowRejected(
                f"row does not fit schema {self._stream} (id {self.schema_id}): {exc}"
            ) from None
        return out.getvalue()


def _epoch_ms(row: Mapping[str, Any], stamps: frozenset[str]) -> dict[str, Any]:
    """Rows carry times as the JSON contract's ISO text; the schema's field is epoch millis."""
    converted = dict(row)
    for name in stamps:
        value = converted.get(name)
        if value.__class__ is str:
            try:
                converted[name] = parse_event_time(value)
            except ValueError:
                raise RowRejected(f"{name} is not an ISO-8601 time: {value!r}") from None
    return converted


def _check_columns(schema: PreparedSchema, columns: Sequence[str], path: Path) -> None:
    missing = [name for name in columns if name not in schema.fields]
    if missing:
        raise SchemaFileError(
            f"{path} has no field for the query's column(s) {', '.join(missing)}: add them "
            "(a new optional field with a default keeps the schema compatible)"
        )
    unfilled = sorted(schema.required.difference(columns))
    if unfilled:
        raise SchemaFileError(
            f"{path} requires field(s) {', '.join(unfilled)} that the query does not select: "
            "select them, or give the fields a default"
        )
