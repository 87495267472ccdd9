"""Avro values and the schema registry: the adapter behind `VALUE_FORMAT=avro`."""

from __future__ import annotations

from clickstream_common.avro.registry import (
    IncompatibleSchema,
    NotARegistry,
    RegistryStopped,
    RegistryUnavailable,
    SchemaRegistry,
    Stopping,
)
from clickstream_common.avro.schemas import SCHEMA_DIR, SchemaFileError
from clickstream_common.avro.serde import AvroFormat
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.metrics import Metrics
from clickstream_common.settings import FormatSettings

__all__ = [
    "SCHEMA_DIR",
    "AvroFormat",
    "IncompatibleSchema",
    "NotARegistry",
    "RegistryStopped",
    "RegistryUnavailable",
    "SchemaFileError",
    "SchemaRegistry",
    "value_format_from",
]


def value_format_from(
    settings: FormatSettings, stopping: Stopping, metrics: Metrics | None = None
) -> ValueFormat:
    """The format `VALUE_FORMAT` names, ready to read and write."""
    if settings.value_format == "json":
        return JSON
    assert settings.schema_registry_url is not None  # FormatSettings.read requires it for avro
    registry = SchemaRegistry(
        settings.schema_registry_url,
        stopping,
        timeout_seconds=settings.schema_registry_timeout_seconds,
        metrics=metrics,
    )
    return AvroFormat(registry, settings.avro_schema_dir or SCHEMA_DIR)
