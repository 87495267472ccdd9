"""When a table read from its topic is complete: caught up with the end offsets seen at start
(docs/ARCHITECTURE.md § Semantics 2). Before that an answer could miss a row that exists."""

from __future__ import annotations

from typing import Protocol

from clickstream_common.records import Record


class TableSource(Protocol):
    def watermarks(self) -> dict[int, tuple[int, int]]: ...
    def positions(self) -> dict[int, int]: ...
    def poll_batch(self, max_records: int, timeout: float) -> list[Record]: ...


class CatchUp:
    def __init__(self, source: TableSource) -> None:
        self._source = source
        self.targets: dict[int, int] = {}

    def start(self) -> dict[int, int]:
        """Note the end offsets to reach (partitions with records only); returns them."""
        self.targets = {
            p: high for p, (low, high) in self._source.watermarks().items() if high > low
        }
        return self.targets

    def reached(self) -> bool:
        positions = self._source.positions()
        return all(positions.get(p, -1) >= end for p, end in self.targets.items())
