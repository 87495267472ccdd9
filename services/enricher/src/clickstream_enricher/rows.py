"""The row vocabulary the query compiler and the window operator share: an input row is a
(click, user) pair of mappings, and compiled expressions are closures over it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeAlias

Row: TypeAlias = Mapping[str, object]
Truth: TypeAlias = bool | None
"""SQL three-valued logic: None is UNKNOWN."""
Predicate: TypeAlias = Callable[[Row, Row | None], Truth]
Getter: TypeAlias = Callable[[Row, Row | None], object]
