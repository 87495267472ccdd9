"""What a compiled aggregation query is: the input (one stream, or clicks joined to users), the
WHERE filter, the window, the group key, the aggregates, HAVING and the output columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from clickstream_enricher.rows import Getter, Predicate
from clickstream_enricher.windows.aggregates import AggregateSpec
from clickstream_enricher.windows.spec import WindowSpec

OutputSource = Literal["key", "aggregate", "window_start", "window_end"]
# What every output row carries after the SELECT list's columns (README § Windowed queries).
ROW_FIELDS = ("window_start", "window_end", "last_event_time", "final", "retract")


@dataclass(frozen=True)
class OutputColumn:
    name: str
    source: OutputSource
    index: int = 0
    """Which key or aggregate, for those sources."""


@dataclass(frozen=True, eq=False)
class AggregateQuery:
    """A windowed GROUP BY, compiled once at start.

    `having` is evaluated over a row of the group's values: ``k<i>`` for the i-th key and
    ``a<j>`` for the j-th aggregate (HAVING may add aggregates the SELECT list does not show).
    """

    target: str
    join: Literal["inner", "left"] | None
    """None: the query reads one stream and joins nothing."""
    where: Predicate | None
    window: WindowSpec
    keys: tuple[Getter, ...]
    user_key: int
    """Which key is the input's key (user_id): it keys the output records."""
    aggregates: tuple[AggregateSpec, ...]
    outputs: tuple[OutputColumn, ...]
    having: Predicate | None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.outputs)

    @property
    def output_columns(self) -> tuple[str, ...]:
        """Every field of an output row: the SELECT list's columns, then `ROW_FIELDS`."""
        return (*self.columns, *(name for name in ROW_FIELDS if name not in self.columns))
