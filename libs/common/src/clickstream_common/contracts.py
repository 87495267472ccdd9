"""Users, clicks, VipActions and their JSON wire form (docs/ARCHITECTURE.md § Data contracts).

Decoding is strict because a record that is almost right is the one that silently corrupts a
join; anything off-contract raises `BadRecord` and is dead-lettered by the caller. The checks
run on a decoded object, so the Avro format (`clickstream_common.avro`) passes its records
through the same ones: an `ObjectReader` turns a record's bytes into that object.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple, Protocol

import msgspec
import orjson

from clickstream_common.records import Record

MAX_RECORD_BYTES = 64 * 1024
LEVELS = ("BRONZE", "SILVER", "GOLD", "PLATINUM")

# Longest accepted value of each text field, in characters: a record past them is a producer bug
# or an attack on the users table, never a real user or click.
MAX_USER_ID_CHARS = 128
MAX_NAME_CHARS = 256
MAX_LEVEL_CHARS = 64
MAX_ACTION_CHARS = 64
MAX_DEVICE_CHARS = 64
MAX_AGENT_CHARS = 1024
# 9999-12-31T23:59:59.999Z: the last instant the VipActions event_time format can write.
MAX_EVENT_TIME_MS = 253_402_300_799_999

USER_FIELDS = frozenset({"user_id", "name", "level"})
CLICK_FIELDS = frozenset({"user_id", "page", "action", "device", "agent", "event_time"})

_MAX_REASON_NAME_CHARS = 64


class BadRecord(ValueError):
    """A record that does not meet its topic's contract; the message is the dead-letter reason."""


class User(NamedTuple):
    user_id: str
    name: str
    level: str

    def as_row(self) -> dict[str, object]:
        return {"user_id": self.user_id, "name": self.name, "level": self.level}


class Click(NamedTuple):
    user_id: str
    page: int
    action: str
    device: str
    agent: str
    event_time_ms: int

    def as_row(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "page": self.page,
            "action": self.action,
            "device": self.device,
            "agent": self.agent,
            "event_time": format_event_time(self.event_time_ms),
        }


def _clip(name: str) -> str:
    """A field name fit for a dead-letter reason: bounded, and printable."""
    clipped = name[:_MAX_REASON_NAME_CHARS]
    if not clipped.isprintable():
        clipped = clipped.encode("unicode_escape").decode("ascii")
    return clipped + "..." if len(name) > _MAX_REASON_NAME_CHARS else clipped


class ObjectReader(Protocol):
    """Turns a record's value into the object the contract checks, or raises `BadRecord`.

    `fields`: the names the contract knows. A schemaless format refuses any other name (a typo
    would otherwise be silently ignored); a format with a registered schema may ignore them,
    since the registry's compatibility rule is what governs a new field there.
    """

    def read(
        self, record: Record, fields: frozenset[str] | None = None, max_bytes: int = ...
    ) -> dict[str, Any]: ...


class JsonObjects:
    """The JSON wire form: one UTF-8 JSON object per record."""

    def read(
        self,
        record: Record,
        fields: frozenset[str] | None = None,
        max_bytes: int = MAX_RECORD_BYTES,
    ) -> dict[str, Any]:
        return _object(record, max_bytes, fields)


JSON_OBJECTS = JsonObjects()


def _object(record: Record, max_bytes: int, fields: frozenset[str] | None) -> dict[str, Any]:
    value = record.value
    if value is None:
        raise BadRecord("null value")
    if len(value) > max_bytes:
        raise BadRecord(f"oversized: {len(value)} bytes > {max_bytes}")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        # orjson validates UTF-8 before parsing; tell a bad encoding apart from bad JSON.
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BadRecord(f"not UTF-8: invalid byte at offset {bad.start}") from None
        raise BadRecord(f"not JSON: {exc}") from None
    if parsed.__class__ is not dict:
        raise BadRecord(f"not a JSON object: {type(parsed).__name__}")
    if fields is not None and not fields.issuperset(parsed):
        unknown = next(name for name in parsed if name not in fields)
        raise BadRecord(f"unknown field: {_clip(unknown)}")
    return parsed


def _text(obj: dict[str, Any], field: str, max_chars: int) -> str:
    value = obj.get(field)
    if value.__class__ is not str:
        if value is None:
            raise BadRecord(f"missing field: {field}")
        raise BadRecord(f"wrong type: {field} must be a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise BadRecord(f"too long: {field} ({len(value)} chars > {max_chars})")
    return value


def _integer(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if value.__class__ is not int:
        if value is None:
            raise BadRecord(f"missing field: {field}")
        raise BadRecord(f"wrong type: {field} must be an integer, got {type(value).__name__}")
    return value


def _user_id(obj: dict[str, Any]) -> str:
    user_id = _text(obj, "user_id", MAX_USER_ID_CHARS)
    if not user_id:
        raise BadRecord("empty user_id")
    return user_id


def _key_text(key: bytes) -> str:
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise BadRecord(f"key is not UTF-8: invalid byte at offset {bad.start}") from None
    if len(text) > MAX_USER_ID_CHARS:
        raise BadRecord(f"too long: key ({len(text)} chars > {MAX_USER_ID_CHARS})")
    return text


def decode_user(
    record: Record, max_bytes: int = MAX_RECORD_BYTES, reader: ObjectReader = JSON_OBJECTS
) -> User | None:
    """Return the user, or None for a tombstone (a null value with a key deletes that user).

    The key is the user_id in UTF-8, for tombstones too: the table is keyed by its text.
    """
    if record.key is None:
        raise BadRecord("null key: a user record must be keyed by user_id")
    key = _key_text(record.key)
    if record.value is None:
        return None
    obj = reader.read(record, USER_FIELDS, max_bytes)
    user_id = _user_id(obj)
    if key != user_id:
        raise BadRecord("key does not match user_id")
    name = _text(obj, "name", MAX_NAME_CHARS)
    level = _text(obj, "level", MAX_LEVEL_CHARS)
    if not level.strip():
        raise BadRecord("empty level")
    # Levels are data: one the pipeline has never seen is stored and looked up like the others.
    # Interned, because a million users share a handful of levels: one string each, not a copy.
    return User(user_id=user_id, name=name, level=sys.intern(level.upper()))


class _JsonClick(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The JSON click contract as msgspec checks it, in C, in one pass: `decode_click`'s fast
    path. It accepts no click the strict checks below refuse (tests/unit/test_fuzz_decoders.py
    holds the two to the same answer); what it refuses, they look at again, to name the reason.
    Scalars only, so the collector need not track it (`gc=False`)."""

    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_USER_ID_CHARS)]
    page: int
    action: Annotated[str, msgspec.Meta(max_length=MAX_ACTION_CHARS)]
    device: Annotated[str, msgspec.Meta(max_length=MAX_DEVICE_CHARS)]
    agent: Annotated[str, msgspec.Meta(max_length=MAX_AGENT_CHARS)]
    event_time: Annotated[int, msgspec.Meta(ge=0, le=MAX_EVENT_TIME_MS)] | None = None


_json_click = msgspec.json.Decoder(_JsonClick)
_new_tuple = tuple.__new__


def decode_click(
    record: Record, max_bytes: int = MAX_RECORD_BYTES, reader: ObjectReader = JSON_OBJECTS
) -> Click:
    """Event time is the click's own `event_time` if present, else the Kafka record timestamp.

    A null key is refused: clicks are partitioned by user_id, and one without a key lands on an
    arbitrary partition, out of order with the rest of that user's clicks.
    """
    value = record.value
    if (
        type(reader).read is JsonObjects.read  # the JSON wire form (the JSON format is one too)
        and record.key is not None
        and value is not None
        and len(value) <= max_bytes
    ):
        try:
            wire = _json_click.decode(value)
        except msgspec.MsgspecError:
            pass  # off the contract: the strict checks say how
        else:
            at = wire.event_time
            # tuple.__new__: a NamedTuple's own constructor is a Python-level function call
            return _new_tuple(
                Click,
                (
                    wire.user_id,
                    wire.page,
                    wire.action,
                    wire.device,
                    wire.agent,
                    record.timestamp_ms if at is None else at,
                ),
            )
    return decode_click_strictly(record, max_bytes, reader)


def decode_click_strictly(
    record: Record, max_bytes: int = MAX_RECORD_BYTES, reader: ObjectReader = JSON_OBJECTS
) -> Click:
    """`decode_click` without its fast path: every check in Python, each with its reason."""
    if record.key is None:
        raise BadRecord("null key: a click record must be keyed by user_id")
    obj = reader.read(record, CLICK_FIELDS, max_bytes)
    user_id = _user_id(obj)
    event_time = obj.get("event_time")
    if event_time is None:
        event_time_ms = record.timestamp_ms
    elif event_time.__class__ is not int or event_time < 0:
        raise BadRecord("wrong type: event_time must be non-negative epoch milliseconds")
    elif event_time > MAX_EVENT_TIME_MS:
        raise BadRecord(f"out of range: event_time ({event_time} > {MAX_EVENT_TIME_MS})")
    else:
        event_time_ms = event_time
    return Click(
        user_id=user_id,
        page=_integer(obj, "page"),
        action=_text(obj, "action", MAX_ACTION_CHARS),
        device=_text(obj, "device", MAX_DEVICE_CHARS),
        agent=_text(obj, "agent", MAX_AGENT_CHARS),
        event_time_ms=event_time_ms,
    )


def key_matches(record: Record, user_id: str) -> bool:
    """Whether a record is keyed by its own user_id (so that user's records share a partition).
    Raises `BadRecord` for a key that is no user_id at all."""
    return record.key is not None and _key_text(record.key) == user_id


def decode_event(
    record: Record, max_bytes: int = MAX_RECORD_BYTES, reader: ObjectReader = JSON_OBJECTS
) -> tuple[dict[str, Any], int]:
    """A record of a stream an earlier query wrote (VipActions, say): any JSON object keyed by
    its `user_id`, whose `event_time` is epoch milliseconds or the ISO form VipActions carry
    (absent: the record's timestamp). Returns the row and its event time in milliseconds."""
    if record.key is None:
        raise BadRecord("null key: a record must be keyed by user_id")
    obj = reader.read(record, None, max_bytes)
    if not key_matches(record, _user_id(obj)):
        raise BadRecord("key does not match user_id")
    event_time = obj.get("event_time")
    if event_time is None:
        return obj, record.timestamp_ms
    if event_time.__class__ is int and 0 <= event_time <= MAX_EVENT_TIME_MS:
        return obj, event_time
    if event_time.__class__ is str:
        try:
            return obj, parse_event_time(event_time)
        except ValueError:
            pass
    raise BadRecord(
        "wrong type: event_time must be epoch milliseconds or an ISO-8601 UTC time such as "
        "2026-12-03T10:00:00.000Z"
    )


def format_event_time(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, the VipActions wire form."""
    return f"{_second_prefix(epoch_ms // 1000)}{epoch_ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _second_prefix(epoch_s: int) -> str:
    """Clicks arrive roughly in time order, so most share their second with the previous one:
    formatting each second once takes the date arithmetic off the per-click path."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def parse_event_time(text: str) -> int:
    """Inverse of `format_event_time`; any ISO-8601 time with a zone. `fromisoformat`, not
    `strptime`: a fortieth of the cost, and a windowed query parses one per record."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    return int(moment.timestamp() * 1000 + 0.5)


def event_id(topic: str, partition: int, offset: int) -> str:
    """Deterministic for the source click, so a replay yields the same id and consumers dedupe."""
    digest = hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=16)
    return digest.hexdigest()


def encode_json(obj: object) -> bytes:
    return orjson.dumps(obj)


def decode_json(data: bytes) -> Any:
    return orjson.loads(data)
