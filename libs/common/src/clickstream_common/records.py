"""A broker-neutral view of a consumed Kafka record, so domain code needs no client imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce; headers are UTF-8 strings on the wire."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, str], ...] = ()
