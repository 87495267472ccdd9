"""The data contracts of DESIGN.md: users, clicks, VipActions and their JSON wire form.

Decoding is strict because a record that is almost right is the one that silently corrupts a
join; anything off-contract raises `BadRecord` and is dead-lettered by the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from clickstream_common.records import Record

MAX_RECORD_BYTES = 64 * 1024
LEVELS = ("BRONZE", "SILVER", "GOLD", "PLATINUM")


class BadRecord(ValueError):
    """A record that does not meet its topic's contract; the message is the dead-letter reason."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    level: str

    def as_row(self) -> dict[str, object]:
        return {"user_id": self.user_id, "name": self.name, "level": self.level}


@dataclass(frozen=True, slots=True)
class Click:
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


def _object(record: Record, max_bytes: int) -> dict[str, Any]:
    value = record.value
    if value is None:
        raise BadRecord("null value")
    if len(value) > max_bytes:
        raise BadRecord(f"oversized: {len(value)} bytes > {max_bytes}")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRecord(f"not a JSON object: {type(parsed).__name__}")
    return parsed


def _text(obj: dict[str, Any], field: str) -> str:
    value = obj.get(field)
    if value is None:
        raise BadRecord(f"missing field: {field}")
    if not isinstance(value, str):
        raise BadRecord(f"wrong type: {field} must be a string, got {type(value).__name__}")
    return value


def _integer(obj: dict[str, Any], field: str) -> int:
    value = obj.get(field)
    if value is None:
        raise BadRecord(f"missing field: {field}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord(f"wrong type: {field} must be an integer, got {type(value).__name__}")
    return value


def decode_user(record: Record, max_bytes: int = MAX_RECORD_BYTES) -> User | None:
    """Return the user, or None for a tombstone (a null value with a key deletes that user)."""
    if record.key is None:
        raise BadRecord("null key: a user record must be keyed by user_id")
    if record.value is None:
        return None
    obj = _object(record, max_bytes)
    user_id = _text(obj, "user_id")
    if not user_id:
        raise BadRecord("empty user_id")
    if record.key != user_id.encode():
        raise BadRecord("key does not match user_id")
    return User(user_id=user_id, name=_text(obj, "name"), level=_text(obj, "level").upper())


def decode_click(record: Record, max_bytes: int = MAX_RECORD_BYTES) -> Click:
    """Event time is the click's own `event_time` if present, else the Kafka record timestamp.

    A null key is refused: clicks are partitioned by user_id, and one without a key lands on an
    arbitrary partition, out of order with the rest of that user's clicks.
    """
    if record.key is None:
        raise BadRecord("null key: a click record must be keyed by user_id")
    obj = _object(record, max_bytes)
    user_id = _text(obj, "user_id")
    if not user_id:
        raise BadRecord("empty user_id")
    event_time = obj.get("event_time")
    if event_time is None:
        event_time_ms = record.timestamp_ms
    elif isinstance(event_time, bool) or not isinstance(event_time, int) or event_time < 0:
        raise BadRecord("wrong type: event_time must be non-negative epoch milliseconds")
    else:
        event_time_ms = event_time
    return Click(
        user_id=user_id,
        page=_integer(obj, "page"),
        action=_text(obj, "action"),
        device=_text(obj, "device"),
        agent=_text(obj, "agent"),
        event_time_ms=event_time_ms,
    )


def format_event_time(epoch_ms: int) -> str:
    """ISO-8601 UTC with milliseconds, the VipActions wire form."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_event_time(text: str) -> int:
    """Inverse of `format_event_time`."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return int(moment.timestamp() * 1000 + 0.5)


def event_id(topic: str, partition: int, offset: int) -> str:
    """Deterministic for the source click, so a replay yields the same id and consumers dedupe."""
    digest = hashlib.blake2b(f"{topic}/{partition}/{offset}".encode(), digest_size=16)
    return digest.hexdigest()


def encode_json(obj: object) -> bytes:
    return orjson.dumps(obj)


def decode_json(data: bytes) -> Any:
    return orjson.loads(data)
