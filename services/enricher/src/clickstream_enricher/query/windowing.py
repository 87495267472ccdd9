"""Flink SQL's group windows: `SESSION(t, gap)`, `TUMBLE(t, size)` and `HOP(t, slide, size)` in
GROUP BY, and their `*_START` / `*_END` properties in the SELECT list. The time argument must be
the input's event time; intervals are `INTERVAL 'n' SECOND|MINUTE|HOUR|DAY`."""

from __future__ import annotations

from typing import Final

from sqlglot import exp

from clickstream_enricher.query.model import Col, QueryError
from clickstream_enricher.query.refusals import strip_parens, unsupported
from clickstream_enricher.query.scope import Resolver
from clickstream_enricher.windows.spec import Hop, Session, Tumble, WindowSpec

EVENT_TIME: Final = Col("click", "event_time")
WINDOW_FUNCTIONS: Final = frozenset({"SESSION", "TUMBLE", "HOP"})
_UNIT_MS: Final[dict[str, int]] = {
    "SECOND": 1000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
}
_PROPERTIES: Final[dict[str, str]] = {"_START": "window_start", "_END": "window_end"}


def function_name(node: exp.Expression) -> str | None:
    """The upper-cased name of a call sqlglot does not know (SESSION, TUMBLE_START, ...)."""
    node = strip_parens(node)
    return node.name.upper() if isinstance(node, exp.Anonymous) else None


def is_window(node: exp.Expression) -> bool:
    return function_name(node) in WINDOW_FUNCTIONS


def window_spec(call: exp.Expression, scope: Resolver) -> WindowSpec:
    """The window of a GROUP BY item such as `SESSION(Clicks.event_time, INTERVAL '30' MINUTE)`."""
    call = strip_parens(call)
    name = function_name(call)
    assert isinstance(call, exp.Anonymous) and name is not None
    args = call.expressions
    wanted = 3 if name == "HOP" else 2
    if len(args) != wanted:
        shape = "time, slide, size" if name == "HOP" else "time, interval"
        raise QueryError(f"{name} takes ({shape}), got {len(args)} arguments: {call.sql()}")
    time = strip_parens(args[0])
    if not isinstance(time, exp.Column) or scope.resolve(time) != EVENT_TIME:
        raise QueryError(
            f"{name} windows are over the input's event time: write {name}(<stream>.event_time, "
            f"...), not {name}({args[0].sql()}, ...)"
        )
    intervals = [interval_ms(arg) for arg in args[1:]]
    if name == "SESSION":
        return Session(gap_ms=intervals[0])
    if name == "TUMBLE":
        return Tumble(size_ms=intervals[0])
    slide, size = intervals
    if size % slide:
        raise QueryError(
            f"HOP size ({args[2].sql()}) must be a whole multiple of its slide ({args[1].sql()})"
        )
    return Hop(slide_ms=slide, size_ms=size)


def interval_ms(node: exp.Expression) -> int:
    node = strip_parens(node)
    if not isinstance(node, exp.Interval):
        raise QueryError(f"expected an INTERVAL such as INTERVAL '30' MINUTE, got {node.sql()}")
    unit_node = node.args.get("unit")
    unit = unit_node.name.upper() if isinstance(unit_node, exp.Var) else None
    if unit is not None and unit.endswith("S"):
        unit = unit[:-1]
    if unit not in _UNIT_MS:
        raise unsupported("INTERVAL unit (use SECOND, MINUTE, HOUR or DAY)", node)
    value = node.this
    text = value.this if isinstance(value, exp.Literal) else None
    if not isinstance(text, str) or not text.strip().isdigit() or int(text) <= 0:
        raise QueryError(f"an INTERVAL needs a positive whole number, got {node.sql()}")
    return int(text) * _UNIT_MS[unit]


def window_property(call: exp.Expression, group_window: exp.Anonymous) -> str | None:
    """'window_start' or 'window_end' for `SESSION_START(...)` and its kin, checked against the
    GROUP BY window (Flink requires the same arguments); None for any other expression."""
    name = function_name(call)
    if name is None:
        return None
    for suffix, prop in _PROPERTIES.items():
        kind = name.removesuffix(suffix)
        if name.endswith(suffix) and kind in WINDOW_FUNCTIONS:
            call = strip_parens(call)
            assert isinstance(call, exp.Anonymous)
            window_name = group_window.name.upper()
            same = [a.sql().lower() for a in call.expressions] == [
                a.sql().lower() for a in group_window.expressions
            ]
            if kind != window_name or not same:
                raise QueryError(
                    f"{call.sql()} does not match the GROUP BY window {group_window.sql()}: "
                    f"write {window_name}{suffix} with the same arguments"
                )
            return prop
    return None
