"""Avro schemas as the serde uses them: the `.avsc` folder, and each schema parsed once.

Time is epoch milliseconds everywhere inside the pipeline, so a `timestamp-millis` field is read
and written as its plain `long`: fastavro would otherwise build a `datetime` per value, only for
the contract to turn it back into milliseconds. The names of those fields are kept, so a row can
still be given to JSON (and RabbitMQ) in the ISO form the JSON contract uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException

from clickstream_common.avro.errors import SchemaFileError

_TIMESTAMP = "timestamp-millis"


@dataclass(frozen=True, slots=True)
class PreparedSchema:
    text: str
    parsed: Any
    timestamp_fields: frozenset[str]
    fields: tuple[str, ...]
    # Fields without a default: a row must give them a value.
    required: frozenset[str] = frozenset()


def prepare(text: str) -> PreparedSchema:
    """Parse a schema's JSON text for fastavro, `timestamp-millis` read as plain `long`.

    Raises `SchemaParseException` or `ValueError` for a text that is no Avro schema.
    """
    schema = json.loads(text)
    stamps: set[str] = set()
    fields: tuple[str, ...] = ()
    required: set[str] = set()
    if isinstance(schema, dict) and schema.get("type") == "record":
        stripped = []
        for field in schema.get("fields", []):
            field_type, stamp = _strip_timestamp(field.get("type"))
            if stamp:
                stamps.add(field["name"])
            stripped.append({**field, "type": field_type})
            if "default" not in field:
                required.add(field["name"])
        schema = {**schema, "fields": stripped}
        fields = tuple(field["name"] for field in stripped)
    return PreparedSchema(
        text, parse_schema(schema), frozenset(stamps), fields, frozenset(required)
    )


def _strip_timestamp(field_type: Any) -> tuple[Any, bool]:
    """A field's type with a top-level `timestamp-millis` (alone or in a union) made `long`."""
    if isinstance(field_type, dict) and field_type.get("logicalType") == _TIMESTAMP:
        return "long", True
    if isinstance(field_type, list):
        members = [_strip_timestamp(member) for member in field_type]
        return [member for member, _ in members], any(stamp for _, stamp in members)
    return field_type, False


def stream_schema(stream: str, folder: Path) -> PreparedSchema:
    """The schema of a stream, from `<folder>/<stream>.avsc` (the names the SQL uses)."""
    path = folder / f"{stream}.avsc"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaFileError(
            f"no Avro schema for stream {stream}: cannot read {path} ({exc.strerror}); "
            "add the file, or set AVRO_SCHEMA_DIR to the folder that has it"
        ) from None
    try:
        prepared = prepare(text)
    except (ValueError, SchemaParseException) as exc:
        raise SchemaFileError(f"{path} is not a valid Avro schema: {exc}") from None
    if not prepared.fields:
        raise SchemaFileError(f"{path} must be an Avro record schema")
    # Registered in canonical form, so the same schema is the same text wherever it comes from.
    return PreparedSchema(
        json.dumps(json.loads(text), separators=(",", ":")),
        prepared.parsed,
        prepared.timestamp_fields,
        prepared.fields,
        prepared.required,
    )
