"""The three window kinds of Flink SQL's group windows, in event-time milliseconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class Session:
    """A key's clicks less than `gap_ms` apart form one window; it ends `gap_ms` after the last
    (Flink's convention), so two windows merge when a click bridges them."""

    gap_ms: int

    @property
    def name(self) -> str:
        return "SESSION"


@dataclass(frozen=True)
class Tumble:
    size_ms: int

    @property
    def name(self) -> str:
        return "TUMBLE"


@dataclass(frozen=True)
class Hop:
    """Windows of `size_ms` starting every `slide_ms`: a click is in size/slide of them."""

    slide_ms: int
    size_ms: int

    @property
    def name(self) -> str:
        return "HOP"


WindowSpec: TypeAlias = Session | Tumble | Hop
