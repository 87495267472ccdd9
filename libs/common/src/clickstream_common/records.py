"""A broker-neutral view of a consumed Kafka record, so domain code needs no client imports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


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


PartitionKey = tuple[str, int]


class RecordSource(Protocol):
    """What a service's loop needs from a consumer group: batches in, explicit commits out."""

    def poll_batch(self, max_records: int, timeout: float) -> list[Record]: ...
    def commit(self, next_offsets: Mapping[PartitionKey, int]) -> None: ...


class RecordSink(Protocol):
    """What it needs from a producer: `flush` raises unless everything sent was acknowledged."""

    def send_all(self, records: Iterable[OutRecord]) -> None: ...
    def flush(self, timeout: float = ...) -> None: ...
