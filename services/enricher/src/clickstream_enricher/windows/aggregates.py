"""The aggregate functions, as accumulators a window keeps per aggregate.

Every accumulator merges (two sessions bridged by a click become one) and is plain JSON data
(`windows.state` encodes it for the changelog; COUNT(DISTINCT)'s values go as an array). SQL's
rules: NULLs are skipped; COUNT of nothing is 0, SUM/MIN/MAX/AVG of nothing NULL; values of
different kinds never compare, so MIN/MAX keep the kind they saw first and skip the others, and
SUM and AVG skip what is not a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from clickstream_enricher.rows import Getter, Predicate, Row

AggregateKind: TypeAlias = Literal[
    "count_star", "count", "count_distinct", "sum", "min", "max", "avg"
]


@dataclass(frozen=True)
class AggregateSpec:
    """One aggregate of the SELECT list (or of HAVING): its function, its argument (None for
    COUNT(*)) and its FILTER (WHERE ...) condition, over the (click, user) row."""

    kind: AggregateKind
    argument: Getter | None = None
    condition: Predicate | None = None


def _number(value: object) -> bool:
    return value.__class__ in (int, float)


# COUNT(DISTINCT) keeps a short list until it holds this many values, then a set: most sessions
# see a handful of distinct values, and an empty set alone is 216 bytes (a tenth of a session).
DISTINCT_AS_LIST = 8
# Only values that compare as SQL values count as distinct ones; a JSON object or array in the
# column counts as NULL, like a value of another kind in MIN/MAX.
_SCALARS = (str, int, float, bool)


def initial(kind: AggregateKind) -> object:
    if kind in ("count_star", "count"):
        return 0
    if kind == "count_distinct":
        return []
    if kind == "avg":
        return [0, 0]
    return None


def add(spec: AggregateSpec, acc: object, click: Row, user: Row | None) -> object:
    """The accumulator after one more row; a set or an AVG pair is changed in place."""
    if spec.condition is not None and spec.condition(click, user) is not True:
        return acc
    kind = spec.kind
    if kind == "count_star":
        return acc + 1  # type: ignore[operator]
    assert spec.argument is not None
    value = spec.argument(click, user)
    if value is None:
        return acc
    if kind == "count":
        return acc + 1  # type: ignore[operator]
    if kind == "count_distinct":
        return _distinct_add(acc, value)
    return _fold(kind, acc, value)


def _distinct_add(acc: object, value: object) -> object:
    if value.__class__ not in _SCALARS:
        return acc
    if isinstance(acc, set):
        acc.add(value)
        return acc
    values: list[object] = acc  # type: ignore[assignment]
    if value not in values:
        if len(values) >= DISTINCT_AS_LIST:
            return {*values, value}
        values.append(value)
    return values


def distinct(values: list[object] | set[object]) -> list[object] | set[object]:
    """The compact form of a set of distinct values (a changelog decodes them as a list)."""
    if len(values) > DISTINCT_AS_LIST:
        return values if isinstance(values, set) else set(values)
    return values if isinstance(values, list) else list(values)


def _fold(kind: AggregateKind, acc: object, value: object) -> object:
    if kind == "sum":
        if not _number(value):
            return acc
        return value if acc is None else acc + value  # type: ignore[operator]
    if kind == "avg":
        if _number(value):
            pair: list[float] = acc  # type: ignore[assignment]
            pair[0] += value  # type: ignore[operator]
            pair[1] += 1
        return acc
    # min / max
    if acc is None:
        return value if _comparable(value) else None
    if not _same_kind(acc, value):
        return acc
    if kind == "min":
        return value if value < acc else acc  # type: ignore[operator]
    return value if value > acc else acc  # type: ignore[operator]


def _comparable(value: object) -> bool:
    return value.__class__ in (int, float, str, bool)


def _same_kind(a: object, b: object) -> bool:
    if _number(a):
        return _number(b)
    return a.__class__ is b.__class__


Adder: TypeAlias = Callable[[object, Row, Row | None], object]


def adder(spec: AggregateSpec) -> Adder:
    """`add` for one spec, specialised once: COUNT(*) and a COUNT(*) FILTER are the hot cases
    (every row of a session query), so they skip the generic dispatch."""
    condition = spec.condition
    if spec.kind == "count_star":
        if condition is None:
            return lambda acc, click, user: acc + 1  # type: ignore[operator]
        return lambda acc, click, user: acc + 1 if condition(click, user) is True else acc  # type: ignore[operator]
    return lambda acc, click, user: add(spec, acc, click, user)


def merge(kind: AggregateKind, a: object, b: object) -> object:
    """One accumulator for the rows of both (sessions merged by a bridging click)."""
    if kind in ("count_star", "count"):
        return a + b  # type: ignore[operator]
    if kind == "count_distinct":
        return distinct({*a, *b})  # type: ignore[misc]
    if kind == "avg":
        return [a[0] + b[0], a[1] + b[1]]  # type: ignore[index]
    if b is None:
        return a
    return _fold(kind, a, b)


def result(kind: AggregateKind, acc: object) -> object:
    if kind == "count_distinct":
        return len(acc)  # type: ignore[arg-type]
    if kind == "avg":
        pair: list[float] = acc  # type: ignore[assignment]
        return pair[0] / pair[1] if pair[1] else None
    return acc
