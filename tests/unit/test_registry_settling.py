"""SchemaRegistry.register against answers Apicurio gives: just restarted and replaying its
KafkaSQL journal, it refuses a schema it already holds with 409 "already exists" for a moment
(seen in CI as an enricher that stopped after a registry restart); a real refusal stays one."""

from __future__ import annotations

from typing import Any

import pytest
from clickstream_common.avro.errors import IncompatibleSchema
from clickstream_common.avro.registry import SchemaRegistry
from confluent_kafka.schema_registry.error import SchemaRegistryError

SCHEMA = '{"type": "record", "name": "R", "fields": []}'


class Client:
    """A registry client answering register_schema with the given errors, then an id."""

    def __init__(self, *errors: SchemaRegistryError) -> None:
        self.errors = list(errors)
        self.registered = 0

    def register_schema(self, subject: str, schema: Any) -> int:
        self.registered += 1
        if self.errors:
            raise self.errors.pop(0)
        return 7

    def set_compatibility(self, subject: str, level: str) -> None:
        pass


class NeverStopping:
    def wait(self, seconds: float) -> bool:
        return False


def _registry(client: Client) -> SchemaRegistry:
    registry = SchemaRegistry("http://registry", NeverStopping(), client=client)  # type: ignore[arg-type]
    registry._pause = lambda seconds: None  # type: ignore[method-assign]
    return registry


def test_already_exists_while_settling_is_registered_again() -> None:
    exists = SchemaRegistryError(409, 40901, "An artifact with ID 's' already exists.")
    client = Client(exists, exists)
    assert _registry(client).register("s", SCHEMA) == 7
    assert client.registered == 3


def test_an_incompatible_schema_is_still_refused_at_once() -> None:
    client = Client(SchemaRegistryError(409, 409, "Incompatible schema: field x removed"))
    with pytest.raises(IncompatibleSchema, match="BACKWARD compatible"):
        _registry(client).register("s", SCHEMA)
    assert client.registered == 1


def test_already_exists_for_good_is_a_refusal_in_the_end() -> None:
    exists = SchemaRegistryError(409, 40901, "already exists")
    client = Client(*[exists] * 100)
    with pytest.raises(IncompatibleSchema):
        _registry(client).register("s", SCHEMA)
    assert client.registered == 30
