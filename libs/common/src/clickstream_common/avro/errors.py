"""What can go wrong with Avro at start or while waiting for the registry: importable without
the registry client, so a service running JSON loads none of it."""

from __future__ import annotations


class SchemaFileError(ValueError):
    """A `.avsc` file that is missing or not a valid Avro record schema; raised at start."""


class RegistryUnavailable(RuntimeError):
    """The registry did not answer (down, restarting, or a network fault)."""


class RegistryStopped(RuntimeError):
    """The service stopped while it was waiting for the registry."""


class IncompatibleSchema(RuntimeError):
    """The registry refused a schema: the message says which subject and why."""


class NotARegistry(RuntimeError):
    """SCHEMA_REGISTRY_URL answers, but not with a schema registry's API."""
