"""The row vocabulary the query compiler and the window operator share: an input row is a
(click, user) pair of mappings, and compiled expressions are closures over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeAlias

Row: TypeAlias = Mapping[str, object]
Truth: TypeAlias = bool | None
"""SQL three-valued logic: None is UNKNOWN."""
Predicate: TypeAlias = Callable[[Row, Row | None], Truth]
Getter: TypeAlias = Callable[[Row, Row | None], object]


class LazyRow(Mapping[str, object]):
    """A click's row made on first use. The seed's WHERE reads only the user's level, so nine
    clicks in ten are dropped without a row dict built or their event time formatted."""

    __slots__ = ("_make", "_row")

    def __init__(self, make: Callable[[], dict[str, object]]) -> None:
        self._make = make
        self._row: dict[str, object] | None = None

    def _full(self) -> dict[str, object]:
        row = self._row
        if row is None:
            row = self._row = self._make()
        return row

    def get(self, key: str, default: object = None) -> object:
        return self._full().get(key, default)

    def __getitem__(self, key: str) -> object:
        return self._full()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._full())

    def __len__(self) -> int:
        return len(self._full())
