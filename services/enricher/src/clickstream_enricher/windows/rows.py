"""The output rows of a windowed query: the SELECT list's columns from a window's key and
accumulators, the fields every row carries (README § Windowed queries), and HAVING."""

from __future__ import annotations

from dataclasses import dataclass

from clickstream_common.contracts import format_event_time

from clickstream_enricher.windows import aggregates
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.state import Key, Window


@dataclass(frozen=True, slots=True)
class OutputRow:
    user_id: str
    value: dict[str, object]


class RowMaker:
    def __init__(self, query: AggregateQuery) -> None:
        self._kinds = [spec.kind for spec in query.aggregates]
        self._having = query.having
        self._user_key = query.user_key
        # The SELECT list as (name, 0 key / 1 aggregate / 2 window_start / 3 window_end, index).
        sources = {"key": 0, "aggregate": 1, "window_start": 2, "window_end": 3}
        self._layout = [(c.name, sources[c.source], c.index) for c in query.outputs]

    def results(self, window: Window) -> list[object]:
        return [
            aggregates.result(kind, acc) for kind, acc in zip(self._kinds, window.accs, strict=True)
        ]

    def holds(self, key: Key, results: list[object]) -> bool:
        """HAVING, over the group's values: `k<i>` for the keys, `a<j>` for the aggregates."""
        having = self._having
        if having is None:
            return True
        values: dict[str, object] = {f"k{i}": value for i, value in enumerate(key)}
        values.update((f"a{j}", value) for j, value in enumerate(results))
        return having(values, None) is True

    def row(
        self,
        key: Key,
        window: Window | None,
        span: tuple[int, int],
        *,
        final: bool,
        retract: bool = False,
        results: list[object] | None = None,
    ) -> OutputRow:
        """An output row; a retraction carries the key and the window's identity, no values."""
        start, end = format_event_time(span[0]), format_event_time(span[1])
        value: dict[str, object] = {}
        for name, source, index in self._layout:
            if source == 0:
                value[name] = key[index]
            elif source == 1:
                value[name] = None if results is None else results[index]
            else:
                value[name] = start if source == 2 else end
        value["window_start"] = start
        value["window_end"] = end
        value["last_event_time"] = None if window is None else format_event_time(window.last)
        value["final"] = final
        value["retract"] = retract
        return OutputRow(str(key[self._user_key]), value)
