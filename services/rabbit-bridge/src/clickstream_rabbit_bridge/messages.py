"""How a VipAction record becomes a RabbitMQ message: pure, so the mapping is tested alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from clickstream_common.contracts import BadRecord, decode_json
from clickstream_common.records import Record

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True, slots=True)
class Delivery:
    routing_key: str
    body: bytes
    message_id: str


def to_delivery(record: Record, prefix: str = "vip") -> Delivery:
    """Body unchanged; routing key `vip.<action>`, so consumers can bind to just checkouts."""
    if record.value is None:
        raise BadRecord("null value")
    try:
        value: Any = decode_json(record.value)
    except ValueError:
        raise BadRecord("not JSON") from None
    if not isinstance(value, dict):
        raise BadRecord("not a JSON object")
    event_id = value.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise BadRecord("missing field: event_id")
    action = value.get("action")
    suffix = _UNSAFE.sub("_", action) if isinstance(action, str) and action else "unknown"
    return Delivery(routing_key=f"{prefix}.{suffix}", body=record.value, message_id=event_id)
