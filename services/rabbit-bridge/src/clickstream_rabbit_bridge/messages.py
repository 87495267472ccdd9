"""How a VipAction record becomes a RabbitMQ message: pure, so the mapping is tested alone."""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickstream_common.contracts import BadRecord
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.records import Record

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
# Large enough for any row a query selects; a bigger record is no VipAction.
MAX_ACTION_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Delivery:
    routing_key: str
    body: bytes
    message_id: str


def to_delivery(
    record: Record,
    prefix: str = "vip",
    value_format: ValueFormat = JSON,
    *,
    as_json: bool = True,
) -> Delivery:
    """Routing key `vip.<action>`, so consumers can bind to just checkouts. The body is the JSON
    form (a JSON record's bytes unchanged), or with `as_json` False the record's own bytes (Avro
    in the Confluent wire format: RABBITMQ_FORMAT=avro)."""
    row = value_format.read(record, None, MAX_ACTION_BYTES)
    event_id = row.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise BadRecord("missing field: event_id")
    action = row.get("action")
    suffix = _UNSAFE.sub("_", action) if isinstance(action, str) and action else "unknown"
    body = value_format.json_body(record, row) if as_json else record.value
    assert body is not None  # `read` refused a null value
    return Delivery(routing_key=f"{prefix}.{suffix}", body=body, message_id=event_id)
