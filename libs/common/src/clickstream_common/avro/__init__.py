"""Avro values and the schema registry: the adapter behind `VALUE_FORMAT=avro`.

The registry client and fastavro are imported only when Avro is asked for (`value_format_from`):
loading them costs every process 16 MB, which a service running JSON has no use for.
"""

from __future__ import annotations

from pathlib import Path

from clickstream_common.avro.errors import (
    IncompatibleSchema,
    NotARegistry,
    RegistryStopped,
    RegistryUnavailable,
    SchemaFileError,
)
from clickstream_common.formats import JSON, ValueFormat
from clickstream_common.lifecycle import Shutdown
from clickstream_common.metrics import Metrics
from clickstream_common.settings import FormatSettings

# The `.avsc` files, one per stream the SQL names (README § Avro or JSON).
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

__all__ = [
    "SCHEMA_DIR",
    "IncompatibleSchema",
    "NotARegistry",
    "RegistryStopped",
    "RegistryUnavailable",
    "SchemaFileError",
    "value_format_from",
]


def value_format_from(
    settings: FormatSettings, stopping: Shutdown, metrics: Metrics | None = None
) -> ValueFormat:
    """The format `VALUE_FORMAT` names, ready to read and write."""
    if settings.value_format == "json":
        return JSON
    from clickstream_common.avro.registry import SchemaRegistry
    from clickstream_common.avro.serde import AvroFormat

    assert settings.schema_registry_url is not None  # FormatSettings.read requires it for avro
    registry = SchemaRegistry(
        settings.schema_registry_url,
        stopping,
        timeout_seconds=settings.schema_registry_timeout_seconds,
        metrics=metrics,
    )
    return AvroFormat(registry, settings.avro_schema_dir or SCHEMA_DIR)
