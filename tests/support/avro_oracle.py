"""The oracle's view of Avro topics: each record decoded by confluent_kafka's own
AvroDeserializer (not by the pipeline's serde) into the JSON contract's form, so the JSON
oracle (tests/support/oracle.py) judges it. A record the reference cannot decode keeps its
bytes, which are no JSON either: the oracle expects it in the DLQ."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support.oracle import KafkaRow


def registry_client(url: str) -> SchemaRegistryClient:
    """A client of its own each time: one caches a subject's latest version."""
    return SchemaRegistryClient({"url": url, "timeout": 10})


def as_json(rows: list[KafkaRow], topic: str, registry_url: str) -> list[KafkaRow]:
    deserialize = AvroDeserializer(
        registry_client(registry_url), conf={"subject.name.strategy.type": "TOPIC"}
    )
    context = SerializationContext(topic, MessageField.VALUE)
    converted = []
    for row in rows:
        if row.value is None:
            converted.append(row)
            continue
        try:
            value: Any = deserialize(row.value, context)
        except Exception:  # any failure of the reference: not Avro as registered
            converted.append(row)
            continue
        # An Avro null (an optional field left out) is an absent field in the JSON contract.
        json_value = {k: _epoch_ms(v) for k, v in value.items() if v is not None}
        converted.append(dataclasses.replace(row, value=orjson.dumps(json_value)))
    return converted


def _epoch_ms(value: object) -> object:
    """timestamp-millis comes back as a datetime; the JSON click contract has epoch millis."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000 + 0.5)
    return value
