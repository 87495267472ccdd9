"""The rows of the windowed queries' output topics, as user-state reads them: session rows
(queries/vip-sessions.sql) and business-day rows (queries/vip-days.sql), README § Windowed
queries. Only the fields every row carries and the aggregates the activity views show are read;
other columns are ignored, so a query may select more. Times are the JSON rows' ISO text, or the
epoch milliseconds of Avro's `timestamp-millis`.

Each `decode_*` takes the topic's `ObjectReader` (Avro); without one the JSON is decoded
straight into the row's struct."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from clickstream_common.contracts import (
    BadRecord,
    ObjectReader,
    format_event_time,
    parse_event_time,
)
from clickstream_common.records import Record

MAX_ROW_BYTES = 64 * 1024


class _Row(msgspec.Struct):
    user_id: str
    window_start: str | int
    window_end: str | int
    final: bool = False
    retract: bool = False
    last_event_time: str | int | None = None
    clicks: int | None = None
    checkouts: int | None = None
    carts: int | None = None


class SessionChange(msgspec.Struct, frozen=True):
    """A session's current row, its last (`final`), or its retraction (`retract`: forget it)."""

    user_id: str
    start_ms: int
    end_ms: int
    last_ms: int
    clicks: int
    checkouts: int | None
    carts: int | None
    final: bool
    retract: bool


class DayChange(msgspec.Struct, frozen=True):
    user_id: str
    start_ms: int
    end_ms: int
    clicks: int
    checkouts: int | None
    final: bool
    retract: bool


_decoder = msgspec.json.Decoder(_Row)
S = TypeVar("S", bound=msgspec.Struct)


def _decode(
    record: Record,
    decoder: msgspec.json.Decoder[S],
    reader: ObjectReader | None,
    what: str,
) -> S:
    """The record as the struct: JSON straight into it, another format through its object."""
    if reader is not None:
        obj: Any = reader.read(record, None, MAX_ROW_BYTES)
        try:
            return msgspec.convert(obj, decoder.type)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            raise BadRecord(f"not a {what}: {exc}") from None
    if record.value is None:
        raise BadRecord(f"null value: a {what} is never a tombstone")
    if len(record.value) > MAX_ROW_BYTES:
        raise BadRecord(f"too large: {len(record.value)} bytes > {MAX_ROW_BYTES}")
    try:
        return decoder.decode(record.value)
    except msgspec.ValidationError as exc:
        raise BadRecord(f"not a {what}: {exc}") from None
    except msgspec.DecodeError:
        raise BadRecord("not JSON") from None


def _ms(value: str | int) -> int:
    """A time as the row carries it: ISO-8601 text (JSON) or epoch milliseconds (Avro)."""
    return value if isinstance(value, int) else parse_event_time(value)


def _row(record: Record, reader: ObjectReader | None) -> tuple[_Row, int, int]:
    row = _decode(record, _decoder, reader, "window row")
    try:
        start, end = _ms(row.window_start), _ms(row.window_end)
    except ValueError:
        raise BadRecord("window_start and window_end must be ISO-8601 times with a zone") from None
    if end <= start:
        raise BadRecord("window_end must be after window_start")
    return row, start, end


def _needed(row: _Row, name: str, value: int | None) -> int:
    if value is None:
        raise BadRecord(f"missing {name}: the query must select it")
    return value


def decode_session(record: Record, reader: ObjectReader | None = None) -> SessionChange:
    row, start, end = _row(record, reader)
    if row.retract:
        return SessionChange(row.user_id, start, end, start, 0, None, None, True, True)
    if row.last_event_time is None:
        raise BadRecord("missing last_event_time")
    try:
        last = _ms(row.last_event_time)
    except ValueError:
        raise BadRecord("last_event_time must be an ISO-8601 time with a zone") from None
    clicks = _needed(row, "clicks", row.clicks)
    return SessionChange(
        row.user_id, start, end, last, clicks, row.checkouts, row.carts, row.final, False
    )


def decode_day(record: Record, reader: ObjectReader | None = None) -> DayChange:
    row, start, end = _row(record, reader)
    if row.retract:
        return DayChange(row.user_id, start, end, 0, None, True, True)
    clicks = _needed(row, "clicks", row.clicks)
    return DayChange(row.user_id, start, end, clicks, row.checkouts, row.final, False)


class ActionRow(msgspec.Struct, frozen=True):
    """A VipAction as the live feed shows it (the seed's query's columns); other columns are
    ignored, and any of these may be missing from a query that does not select it."""

    user_id: str
    event_time: str
    name: str | None = None
    action: str | None = None
    page: int | str | None = None


class _ActionRow(msgspec.Struct):
    user_id: str
    event_time: str | int
    name: str | None = None
    action: str | None = None
    page: int | str | None = None


_action_decoder = msgspec.json.Decoder(_ActionRow)


def decode_action(record: Record, reader: ObjectReader | None = None) -> ActionRow:
    row = _decode(record, _action_decoder, reader, "VipAction")
    at = row.event_time
    try:
        event_time = (
            format_event_time(at)
            if isinstance(at, int)
            else format_event_time(parse_event_time(at))
        )
    except (ValueError, OverflowError, OSError):
        raise BadRecord("event_time must be epoch milliseconds or an ISO-8601 time") from None
    return ActionRow(row.user_id, event_time, row.name, row.action, row.page)
