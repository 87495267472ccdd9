"""The accumulators: SQL's NULL and kind rules, merging (sessions bridged by a click), their
changelog encoding, and business-day alignment across a daylight-saving change."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from clickstream_common.contracts import format_event_time, parse_event_time
from clickstream_enricher.windows import aggregates
from clickstream_enricher.windows.aggregates import AggregateKind, AggregateSpec
from clickstream_enricher.windows.alignment import Alignment
from clickstream_enricher.windows.spec import Tumble
from clickstream_enricher.windows.state import (
    KeyState,
    Window,
    decode_state,
    distinct_positions,
    encode_state,
)


def fold(kind: AggregateKind, values: list[object]) -> object:
    spec = AggregateSpec(kind, lambda click, user: click["v"])
    acc = aggregates.initial(kind)
    for value in values:
        acc = aggregates.add(spec, acc, {"v": value}, None)
    return acc


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        ("count", [1, None, "a"], 2),
        ("count_distinct", ["a", "b", "a", None], 2),
        ("sum", [1, 2.5, None, "x", True], 3.5),
        ("sum", [None], None),
        ("min", [3, 1, "a", 2], 1),
        ("max", ["b", "c", 5, "a"], "c"),
        ("avg", [1, 2, None, "x"], 1.5),
        ("avg", [], None),
    ],
)
def test_sql_rules(kind: AggregateKind, values: list[object], expected: object) -> None:
    assert aggregates.result(kind, fold(kind, values)) == expected


@pytest.mark.parametrize("kind", ["count", "count_distinct", "sum", "min", "max", "avg"])
def test_merging_equals_folding_everything(kind: AggregateKind) -> None:
    left, right = [1, 5, None, 2], [7, 1, 3]
    merged = aggregates.merge(kind, fold(kind, left), fold(kind, right))
    assert aggregates.result(kind, merged) == aggregates.result(kind, fold(kind, left + right))


@pytest.mark.parametrize("kind", ["count", "count_distinct", "sum", "min", "max", "avg"])
def test_the_changelog_encoding_round_trips(kind: AggregateKind) -> None:
    acc = fold(kind, [3, 1, 3])
    state = KeyState(7, [Window(1, 2, 1, [acc], shown=1)])
    again = decode_state(encode_state(state), distinct_positions([kind]))
    assert again.last_offset == 7 and again.windows[0].shown == 1
    assert aggregates.result(kind, again.windows[0].accs[0]) == aggregates.result(kind, acc)
    merged = aggregates.merge(kind, again.windows[0].accs[0], fold(kind, [9]))
    assert aggregates.result(kind, merged) == aggregates.result(kind, fold(kind, [3, 1, 3, 9]))


def test_count_distinct_stays_a_short_list_until_it_grows_and_ignores_objects() -> None:
    small = fold("count_distinct", ["a", "b", "a", {"not": "a value"}, ["nor", "this"]])
    assert small == ["a", "b"]
    large = fold("count_distinct", list(range(20)) + list(range(5)))
    assert isinstance(large, set) and aggregates.result("count_distinct", large) == 20
    merged = aggregates.merge("count_distinct", small, ["b", "c"])
    assert sorted(merged) == ["a", "b", "c"]  # type: ignore[call-overload]


def test_a_filter_counts_only_the_rows_it_keeps() -> None:
    spec = AggregateSpec("count_star", None, lambda click, user: click["a"] == "checkout")
    acc = aggregates.initial("count_star")
    for action in ("view", "checkout", "checkout"):
        acc = aggregates.add(spec, acc, {"a": action}, None)
    assert acc == 2


def test_a_business_day_across_the_spring_change_is_23_hours() -> None:
    days = Alignment(Tumble(86_400_000), ZoneInfo("Europe/Berlin"))
    [(start, end)] = days.windows(parse_event_time("2026-03-29T12:00:00.000Z"))
    assert format_event_time(start) == "2026-03-28T23:00:00.000Z"  # midnight CET
    assert format_event_time(end) == "2026-03-29T22:00:00.000Z"  # midnight CEST
    assert end - start == 23 * 3_600_000
