"""The enricher's query compiler: the seed query, the supported SQL subset, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clickstream_enricher.query import (
    CLICK_COLUMNS,
    DEFAULT_QUERY,
    USER_COLUMNS,
    CompiledQuery,
    QueryError,
    StreamNames,
    compile_query,
)

CLICK = {
    "user_id": "795-35-5070",
    "page": 5535,
    "action": "selection",
    "device": "computer",
    "agent": "Mozilla/5.0",
    "event_time": "2026-11-27T20:52:23.123Z",
}
PLATINUM = {"user_id": "795-35-5070", "name": "Dr. Akiko Hoppe", "level": "PLATINUM"}
GOLD = {"user_id": "795-35-5070", "name": "Dr. Akiko Hoppe", "level": "GOLD"}

JOIN = "FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id"
LEFT = "FROM Clicks LEFT JOIN Users ON Clicks.user_id = Users.user_id"


def click(**overrides: object) -> dict[str, object]:
    return {**CLICK, **overrides}


def user(**overrides: object) -> dict[str, object]:
    return {**PLATINUM, **overrides}


def where(predicate: str, join: str = JOIN) -> CompiledQuery:
    return compile_query(f"SELECT Clicks.page {join} WHERE {predicate}")


# --------------------------------------------------------------------------------------------
# The seed query


def test_default_query_is_the_seed_verbatim() -> None:
    assert DEFAULT_QUERY.splitlines() == [
        "INSERT INTO VipActions",
        "     SELECT",
        "        Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time",
        "     FROM",
        "        Clicks",
        "     INNER JOIN",
        "        Users ON Clicks.user_id = Users.user_id",
        "     WHERE",
        "        Users.level = 'PLATINUM'",
    ]


def test_seed_query_shape() -> None:
    q = compile_query(DEFAULT_QUERY)
    assert q.target == "VipActions"
    assert q.join == "inner"
    assert q.columns == ("user_id", "name", "page", "action", "event_time")


def test_seed_query_emits_platinum_click_projected_exactly() -> None:
    q = compile_query(DEFAULT_QUERY)
    row = q.evaluate(CLICK, PLATINUM)
    assert row == {
        "user_id": "795-35-5070",
        "name": "Dr. Akiko Hoppe",
        "page": 5535,
        "action": "selection",
        "event_time": "2026-11-27T20:52:23.123Z",
    }
    assert row is not None
    assert list(row) == ["user_id", "name", "page", "action", "event_time"]
    assert q.matches(CLICK, PLATINUM) is True


def test_seed_query_drops_other_levels() -> None:
    q = compile_query(DEFAULT_QUERY)
    for level in ("GOLD", "SILVER", "platinum", ""):
        assert q.evaluate(CLICK, user(level=level)) is None
        assert q.matches(CLICK, user(level=level)) is False
    assert q.evaluate(CLICK, user(level=None)) is None


def test_seed_query_drops_unknown_user() -> None:
    q = compile_query(DEFAULT_QUERY)
    assert q.evaluate(CLICK, None) is None
    assert q.matches(CLICK, None) is False


def test_project_ignores_the_predicate_and_nulls_a_missing_user() -> None:
    q = compile_query(DEFAULT_QUERY)
    assert q.project(CLICK, GOLD)["name"] == "Dr. Akiko Hoppe"
    assert q.project(CLICK, None) == {
        "user_id": None,
        "name": None,
        "page": 5535,
        "action": "selection",
        "event_time": "2026-11-27T20:52:23.123Z",
    }


def test_each_evaluation_returns_a_fresh_dict() -> None:
    q = compile_query(DEFAULT_QUERY)
    first = q.evaluate(CLICK, PLATINUM)
    assert first is not None
    first["name"] = "mutated"
    assert q.evaluate(CLICK, PLATINUM) == q.project(CLICK, PLATINUM)
    assert q.project(CLICK, PLATINUM)["name"] == "Dr. Akiko Hoppe"


def test_missing_row_keys_read_as_null() -> None:
    q = compile_query(DEFAULT_QUERY)
    assert q.evaluate({"user_id": "1"}, PLATINUM) == {
        "user_id": "795-35-5070",
        "name": "Dr. Akiko Hoppe",
        "page": None,
        "action": None,
        "event_time": None,
    }
    assert q.evaluate(CLICK, {"user_id": "795-35-5070"}) is None


def test_compiled_query_is_frozen_and_not_equal_by_shape_alone() -> None:
    q = compile_query(DEFAULT_QUERY)
    with pytest.raises(AttributeError):
        q.target = "x"  # type: ignore[misc]
    gold = compile_query(DEFAULT_QUERY.replace("PLATINUM", "GOLD"))
    assert gold.columns == q.columns
    assert gold != q
    assert repr(q) == (
        "CompiledQuery(target='VipActions', join='inner', "
        "columns=('user_id', 'name', 'page', 'action', 'event_time'))"
    )


# --------------------------------------------------------------------------------------------
# Statement forms, names and aliases


def test_bare_select_targets_the_configured_output() -> None:
    q = compile_query(f"SELECT Clicks.page {JOIN}")
    assert q.target == "VipActions"
    q = compile_query(f"SELECT Clicks.page {JOIN}", StreamNames(output="vip_out"))
    assert q.target == "vip_out"


def test_insert_target_is_kept_as_written() -> None:
    assert compile_query(f"INSERT INTO HighValue SELECT Clicks.page {JOIN}").target == "HighValue"


def test_trailing_semicolon_and_comments_are_fine() -> None:
    q = compile_query(f"-- vip only\nSELECT Clicks.page {JOIN} WHERE Users.level = 'PLATINUM';")
    assert q.evaluate(CLICK, PLATINUM) == {"page": 5535}


def test_no_where_emits_every_joined_click() -> None:
    q = compile_query(f"SELECT Users.name, Clicks.device {JOIN}")
    assert q.evaluate(CLICK, GOLD) == {"name": "Dr. Akiko Hoppe", "device": "computer"}
    assert q.evaluate(CLICK, None) is None


def test_stream_names_are_configurable_and_case_insensitive() -> None:
    streams = StreamNames(clicks="click_events", users="user_table", output="vip")
    q = compile_query(
        "insert into vip select USER_TABLE.name, Click_Events.page from CLICK_EVENTS "
        "join user_table on click_events.user_id = User_Table.user_id "
        "where user_table.level = 'PLATINUM'",
        streams,
    )
    assert q.columns == ("name", "page")
    assert q.evaluate(CLICK, PLATINUM) == {"name": "Dr. Akiko Hoppe", "page": 5535}
    with pytest.raises(QueryError, match="unknown stream 'Clicks'"):
        compile_query(DEFAULT_QUERY, streams)


def test_column_names_are_case_insensitive_and_canonical() -> None:
    q = compile_query(f'SELECT USERS.NAME, "Clicks"."Page" {JOIN} WHERE Users.LEVEL = \'PLATINUM\'')
    assert q.columns == ("name", "page")
    assert q.evaluate(CLICK, PLATINUM) == {"name": "Dr. Akiko Hoppe", "page": 5535}


@pytest.mark.parametrize(
    "from_join",
    [
        "FROM Clicks c JOIN Users u ON c.user_id = u.user_id",
        "FROM Clicks AS c INNER JOIN Users AS u ON u.user_id = c.user_id",
        "FROM Clicks AS c INNER JOIN Users AS u ON (c.user_id = u.user_id)",
        "FROM Users u JOIN Clicks c ON c.user_id = u.user_id",
    ],
)
def test_table_aliases(from_join: str) -> None:
    q = compile_query(f"SELECT u.name AS who, c.page, c.action AS what {from_join}")
    assert q.join == "inner"
    assert q.columns == ("who", "page", "what")
    assert q.evaluate(CLICK, PLATINUM) == {
        "who": "Dr. Akiko Hoppe",
        "page": 5535,
        "what": "selection",
    }


def test_column_aliases_keep_their_spelling() -> None:
    q = compile_query(f"SELECT Users.user_id AS UserId, Clicks.event_time eventTime {JOIN}")
    assert q.columns == ("UserId", "eventTime")
    assert q.evaluate(CLICK, PLATINUM) == {
        "UserId": "795-35-5070",
        "eventTime": "2026-11-27T20:52:23.123Z",
    }


def test_aliased_stream_is_hidden_behind_its_alias() -> None:
    with pytest.raises(QueryError, match=r"Clicks is aliased as c; write c\.page"):
        compile_query("SELECT Clicks.page FROM Clicks c JOIN Users u ON c.user_id = u.user_id")


def test_unqualified_columns_resolve_when_unambiguous() -> None:
    q = compile_query(f"SELECT name, page, level {JOIN} WHERE level = 'PLATINUM' AND page > 10")
    assert q.evaluate(CLICK, PLATINUM) == {
        "name": "Dr. Akiko Hoppe",
        "page": 5535,
        "level": "PLATINUM",
    }
    assert q.evaluate(CLICK, GOLD) is None


def test_unqualified_user_id_is_ambiguous() -> None:
    with pytest.raises(QueryError, match="ambiguous column user_id"):
        compile_query(f"SELECT user_id {JOIN}")
    with pytest.raises(QueryError, match="ambiguous column user_id"):
        compile_query(f"SELECT Clicks.page {JOIN} WHERE user_id = 'x'")
    with pytest.raises(QueryError, match="ambiguous column user_id"):
        compile_query("SELECT Clicks.page FROM Clicks JOIN Users ON user_id = user_id")


def test_click_and_user_user_id_may_both_be_selected_under_different_names() -> None:
    q = compile_query(
        f"SELECT Clicks.user_id, Users.user_id AS known_user_id {LEFT}",
    )
    assert q.evaluate(CLICK, None) == {"user_id": "795-35-5070", "known_user_id": None}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"SELECT Clicks.nope {JOIN}", r"unknown column Clicks\.nope"),
        (f"SELECT Users.page {JOIN}", r"unknown column Users\.page"),
        (f"SELECT nope {JOIN}", "unknown column nope"),
        (f"SELECT Clicks.page {JOIN} WHERE Users.age > 3", r"unknown column Users\.age"),
        (f"SELECT x.page {JOIN}", "unknown stream or alias 'x'"),
        ("SELECT Orders.id FROM Orders JOIN Users ON Orders.user_id = Users.user_id", "Orders"),
        ("SELECT Clicks.page FROM Clicks JOIN Sessions ON 1 = 1", "unknown stream 'Sessions'"),
        (f"INSERT INTO Clicks SELECT Clicks.page {JOIN}", "cannot be an input stream"),
        ("SELECT c.page FROM Clicks c JOIN Users c ON c.user_id = c.user_id", "duplicate stream"),
        (f"SELECT Clicks.page, Clicks.page {JOIN}", "duplicate output column 'page'"),
        (f"SELECT Clicks.action AS page, Clicks.page {JOIN}", "duplicate output column 'page'"),
        (f"SELECT Clicks.*, Users.* {JOIN}", "duplicate output column 'user_id'"),
        ("SELECT Clicks.page FROM Clicks", "missing JOIN"),
        ("SELECT 1", "missing FROM"),
        (f"SELECT Clicks.page {JOIN} WHERE Clicks.page", "used as a condition"),
        ("", "empty query"),
        (";", "empty query"),
        ("SELECT Clicks.page FROM", "cannot parse query"),
        ("SELECT 'unterminated", "cannot parse query"),
        ("SELEC x", "not a SELECT or INSERT INTO"),
    ],
)
def test_bad_names_and_shapes(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(sql)


def test_parse_error_keeps_sqlglot_message_without_terminal_codes() -> None:
    with pytest.raises(QueryError) as info:
        compile_query("SELECT Clicks.page FROM WHERE")
    text = str(info.value)
    assert "Expected table name" in text
    assert "Line 1" in text
    assert "\x1b" not in text


def test_query_error_is_a_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_identical_stream_names_are_refused() -> None:
    with pytest.raises(QueryError, match="different names"):
        compile_query(DEFAULT_QUERY, StreamNames(clicks="s", users="S"))


# --------------------------------------------------------------------------------------------
# SELECT *


def test_select_star_expands_clicks_then_users_without_duplicate_key() -> None:
    q = compile_query(f"SELECT * {JOIN}")
    assert q.columns == (*CLICK_COLUMNS, "name", "level")
    assert q.evaluate(CLICK, PLATINUM) == {**CLICK, "name": "Dr. Akiko Hoppe", "level": "PLATINUM"}


def test_select_star_with_left_join_keeps_the_click_key() -> None:
    q = compile_query(f"SELECT * {LEFT}")
    assert q.evaluate(CLICK, None) == {**CLICK, "name": None, "level": None}


def test_qualified_star_expands_one_stream() -> None:
    q = compile_query("SELECT u.*, c.page FROM Clicks c JOIN Users u ON c.user_id = u.user_id")
    assert q.columns == (*USER_COLUMNS, "page")
    q = compile_query(f"SELECT Clicks.* {JOIN}")
    assert q.columns == CLICK_COLUMNS


# --------------------------------------------------------------------------------------------
# LEFT JOIN


@pytest.mark.parametrize("kw", ["LEFT JOIN", "LEFT OUTER JOIN", "left outer join"])
def test_left_join_with_missing_user_nulls_user_columns(kw: str) -> None:
    q = compile_query(
        f"SELECT Clicks.user_id, Users.name, Users.level, Clicks.page FROM Clicks {kw} Users "
        "ON Clicks.user_id = Users.user_id"
    )
    assert q.join == "left"
    assert q.evaluate(CLICK, None) == {
        "user_id": "795-35-5070",
        "name": None,
        "level": None,
        "page": 5535,
    }
    assert q.matches(CLICK, None) is True
    assert q.evaluate(CLICK, GOLD) == {
        "user_id": "795-35-5070",
        "name": "Dr. Akiko Hoppe",
        "level": "GOLD",
        "page": 5535,
    }


def test_left_join_where_on_user_column_is_unknown_without_user() -> None:
    q = where("Users.level = 'PLATINUM'", LEFT)
    assert q.evaluate(CLICK, PLATINUM) == {"page": 5535}
    assert q.evaluate(CLICK, None) is None
    q = where("Users.level <> 'PLATINUM'", LEFT)
    assert q.evaluate(CLICK, None) is None
    assert q.evaluate(CLICK, GOLD) == {"page": 5535}


def test_left_join_is_null_keeps_unmatched_clicks() -> None:
    q = where("Users.user_id IS NULL", LEFT)
    assert q.evaluate(CLICK, None) == {"page": 5535}
    assert q.evaluate(CLICK, PLATINUM) is None
    q = where("Users.level = 'PLATINUM' OR Users.level IS NULL", LEFT)
    assert q.evaluate(CLICK, None) == {"page": 5535}
    assert q.evaluate(CLICK, PLATINUM) == {"page": 5535}
    assert q.evaluate(CLICK, GOLD) is None


def test_left_join_on_click_columns_still_filters_without_user() -> None:
    q = where("Clicks.action = 'checkout'", LEFT)
    assert q.evaluate(click(action="checkout"), None) == {"page": 5535}
    assert q.evaluate(CLICK, None) is None


# --------------------------------------------------------------------------------------------
# Predicates, one form at a time: (WHERE, click overrides, user overrides, emitted?)


@pytest.mark.parametrize(
    ("predicate", "click_over", "user_over", "emitted"),
    [
        # = and <> / != on strings (case-sensitive)
        ("Clicks.action = 'selection'", {}, {}, True),
        ("Clicks.action = 'Selection'", {}, {}, False),
        ("Clicks.action <> 'selection'", {}, {}, False),
        ("Clicks.action <> 'checkout'", {}, {}, True),
        ("Clicks.action != 'checkout'", {}, {}, True),
        ("Clicks.action != 'selection'", {}, {}, False),
        ("'PLATINUM' = Users.level", {}, {}, True),
        ("'GOLD' = Users.level", {}, {}, False),
        # comparisons on page (int) against ints, floats, negatives
        ("Clicks.page = 5535", {}, {}, True),
        ("Clicks.page = 5535.0", {}, {}, True),
        ("Clicks.page <> 5535", {}, {}, False),
        ("Clicks.page < 5536", {}, {}, True),
        ("Clicks.page < 5535", {}, {}, False),
        ("Clicks.page <= 5535", {}, {}, True),
        ("Clicks.page <= 5534", {}, {}, False),
        ("Clicks.page > 5534", {}, {}, True),
        ("Clicks.page > 5535", {}, {}, False),
        ("Clicks.page >= 5535", {}, {}, True),
        ("Clicks.page >= 5535.5", {}, {}, False),
        ("Clicks.page > 5534.9", {}, {}, True),
        ("Clicks.page > -1", {}, {}, True),
        ("Clicks.page > -1", {"page": -2}, {}, False),
        ("Clicks.page >= -2.5", {"page": -2}, {}, True),
        ("Clicks.page > 1e3", {}, {}, True),
        ("Clicks.page < 10", {"page": 9.5}, {}, True),
        ("5000 < Clicks.page", {}, {}, True),
        ("6000 <= Clicks.page", {}, {}, False),
        ("6000 > Clicks.page", {}, {}, True),
        ("5535 >= Clicks.page", {}, {}, True),
        # string ordering (ISO event times sort as strings)
        ("Clicks.event_time >= '2026-11-27T00:00:00.000Z'", {}, {}, True),
        ("Clicks.event_time < '2026-11-27T00:00:00.000Z'", {}, {}, False),
        ("Users.name > 'Dr.'", {}, {}, True),
        # mismatched kinds are unknown, both ways round, never an exception
        ("Clicks.page = '5535'", {}, {}, False),
        ("NOT Clicks.page = '5535'", {}, {}, False),
        ("Clicks.page <> '5535'", {}, {}, False),
        ("Clicks.page > 'a'", {}, {}, False),
        ("Clicks.action = 1", {}, {}, False),
        ("NOT (Clicks.action = 1)", {}, {}, False),
        ("Clicks.page = 1", {"page": True}, {}, False),
        ("Clicks.page = TRUE", {"page": True}, {}, True),
        ("Clicks.page = FALSE", {"page": 0}, {}, False),
        ("NOT Clicks.page = FALSE", {"page": 0}, {}, False),
        ("Clicks.page = 1", {"page": [1]}, {}, False),
        ("Clicks.page IS NULL", {"page": [1]}, {}, False),
        # NULL semantics: comparisons with NULL are unknown, WHERE keeps only TRUE
        ("Clicks.page = NULL", {}, {}, False),
        ("Clicks.page <> NULL", {}, {}, False),
        ("NOT (Clicks.page = NULL)", {}, {}, False),
        ("NULL = NULL", {}, {}, False),
        ("Clicks.page = 5535", {"page": None}, {}, False),
        ("NOT Clicks.page = 5535", {"page": None}, {}, False),
        ("Clicks.page <> 5535", {"page": None}, {}, False),
        ("Users.name = 'x'", {}, {"name": None}, False),
        ("NOT Users.name = 'x'", {}, {"name": None}, False),
        ("Clicks.page IS NULL", {"page": None}, {}, True),
        ("Clicks.page IS NULL", {}, {}, False),
        ("Clicks.page IS NOT NULL", {}, {}, True),
        ("Clicks.page IS NOT NULL", {"page": None}, {}, False),
        ("NOT Clicks.page IS NULL", {}, {}, True),
        ("Users.name IS NULL", {}, {"name": None}, True),
        ("Users.name IS NOT NULL", {}, {"name": None}, False),
        ("NULL IS NULL", {}, {}, True),
        ("5 IS NULL", {}, {}, False),
        # three-valued AND / OR
        ("Clicks.page = NULL OR Clicks.page = 5535", {}, {}, True),
        ("Clicks.page = NULL OR Clicks.page = 1", {}, {}, False),
        ("NOT (Clicks.page = NULL OR Clicks.page = 1)", {}, {}, False),
        ("Clicks.page = NULL AND Clicks.page = 1", {}, {}, False),
        ("NOT (Clicks.page = NULL AND Clicks.page = 1)", {}, {}, True),
        ("NOT (Clicks.page = NULL AND Clicks.page = 5535)", {}, {}, False),
        ("Clicks.page = 5535 OR Clicks.page = NULL", {}, {}, True),
        ("NOT (Clicks.page = 1 AND Clicks.page = NULL)", {}, {}, True),
        ("NOT (Clicks.page = 5535 AND Clicks.page = NULL)", {}, {}, False),
        ("NOT (Clicks.page = 1 OR Clicks.page = NULL)", {}, {}, False),
        # boolean literals
        ("TRUE", {}, {}, True),
        ("FALSE", {}, {}, False),
        ("NULL", {}, {}, False),
        ("NOT FALSE", {}, {}, True),
        ("NOT NULL", {}, {}, False),
        ("1 = 1", {}, {}, True),
        ("1 = 1.0", {}, {}, True),
        ("'a' < 'b'", {}, {}, True),
        ("1 = '1'", {}, {}, False),
        # column against column
        ("Clicks.user_id = Users.user_id", {}, {}, True),
        ("Clicks.user_id <> Users.user_id", {}, {}, False),
        ("Clicks.action = Users.name", {"action": "Dr. Akiko Hoppe"}, {}, True),
        ("Clicks.page > Users.name", {}, {}, False),
        ("Clicks.page = Users.level", {"page": None}, {"level": None}, False),
        # BETWEEN is supported: x >= low AND x <= high
        ("Clicks.page BETWEEN 5000 AND 6000", {}, {}, True),
        ("Clicks.page BETWEEN 5535 AND 5535", {}, {}, True),
        ("Clicks.page BETWEEN 6000 AND 7000", {}, {}, False),
        ("Clicks.page NOT BETWEEN 6000 AND 7000", {}, {}, True),
        ("Clicks.page NOT BETWEEN 5000 AND 6000", {}, {}, False),
        ("Clicks.page BETWEEN 5000 AND NULL", {}, {}, False),
        ("Clicks.page NOT BETWEEN 5000 AND NULL", {}, {}, False),
        ("Clicks.page NOT BETWEEN 6000 AND NULL", {}, {}, True),
        ("Clicks.action BETWEEN 'a' AND 'z'", {}, {}, True),
    ],
)
def test_predicate(
    predicate: str, click_over: dict[str, object], user_over: dict[str, object], emitted: bool
) -> None:
    q = where(predicate)
    c, u = click(**click_over), user(**user_over)
    assert q.matches(c, u) is emitted
    assert q.evaluate(c, u) == ({"page": c["page"]} if emitted else None)


@pytest.mark.parametrize(
    ("predicate", "page", "emitted"),
    [
        ("Clicks.page IN (1, 2, 5535)", 5535, True),
        ("Clicks.page IN (1, 2, 3)", 5535, False),
        ("Clicks.page IN (1.0, 2.5)", 1, True),
        ("Clicks.page IN (-1, -2)", -2, True),
        ("Clicks.page IN (1)", None, False),
        ("Clicks.page IN (1, NULL)", 1, True),
        ("Clicks.page IN (1, NULL)", 2, False),
        ("Clicks.page NOT IN (1, 2)", 5535, True),
        ("Clicks.page NOT IN (1, 2)", 2, False),
        ("Clicks.page NOT IN (1, 2)", None, False),
        # NOT IN with a NULL in the list is never TRUE
        ("Clicks.page NOT IN (1, NULL)", 5535, False),
        ("Clicks.page NOT IN (1, NULL)", 1, False),
        # items of another kind make a miss unknown, a hit still TRUE
        ("Clicks.page IN ('5535', 5535)", 5535, True),
        ("Clicks.page IN ('5535', 1)", 5535, False),
        ("Clicks.page NOT IN ('5535', 1)", 5535, False),
        ("Clicks.page NOT IN ('a', 'b')", 5535, False),
        # booleans are not numbers
        ("Clicks.page IN (1, 2)", True, False),
        ("Clicks.page NOT IN (1, 2)", True, False),
        ("Clicks.page IN (TRUE)", True, True),
        ("Clicks.page NOT IN (FALSE)", True, True),
        ("NOT Clicks.page IN (1, 2)", 5535, True),
        ("5535 IN (1, 5535)", 0, True),
        ("NULL IN (1, 5535)", 0, False),
    ],
)
def test_in_and_not_in_on_page(predicate: str, page: object, emitted: bool) -> None:
    assert where(predicate).matches(click(page=page), PLATINUM) is emitted


@pytest.mark.parametrize(
    ("predicate", "level", "emitted"),
    [
        ("Users.level IN ('PLATINUM', 'GOLD')", "GOLD", True),
        ("Users.level IN ('PLATINUM', 'GOLD')", "SILVER", False),
        ("Users.level IN ('PLATINUM', 'GOLD')", "gold", False),
        ("Users.level NOT IN ('PLATINUM', 'GOLD')", "SILVER", True),
        ("Users.level NOT IN ('PLATINUM', 'GOLD')", None, False),
        ("Users.level IN ('PLATINUM')", None, False),
    ],
)
def test_in_and_not_in_on_level(predicate: str, level: object, emitted: bool) -> None:
    assert where(predicate).matches(CLICK, user(level=level)) is emitted


def test_in_on_user_column_without_user_in_left_join() -> None:
    q = where("Users.level NOT IN ('GOLD')", LEFT)
    assert q.matches(CLICK, None) is False
    assert q.matches(CLICK, PLATINUM) is True


@pytest.mark.parametrize(
    ("action", "device", "level", "emitted"),
    [
        ("checkout", "mobile", "GOLD", True),
        ("checkout", "computer", "GOLD", False),
        ("selection", "mobile", "GOLD", False),
        ("selection", "computer", "PLATINUM", True),
        ("checkout", "mobile", "PLATINUM", True),
    ],
)
def test_and_binds_tighter_than_or(action: str, device: str, level: str, emitted: bool) -> None:
    q = where("Users.level = 'PLATINUM' OR Clicks.action = 'checkout' AND Clicks.device = 'mobile'")
    c, u = click(action=action, device=device), user(level=level)
    assert q.matches(c, u) is emitted
    explicit = where(
        "Users.level = 'PLATINUM' OR (Clicks.action = 'checkout' AND Clicks.device = 'mobile')"
    )
    assert explicit.matches(c, u) is emitted


@pytest.mark.parametrize(
    ("action", "device", "level", "emitted"),
    [
        ("checkout", "mobile", "GOLD", True),
        ("checkout", "computer", "PLATINUM", False),
        ("selection", "mobile", "PLATINUM", True),
        ("selection", "mobile", "GOLD", False),
    ],
)
def test_parentheses_override_precedence(
    action: str, device: str, level: str, emitted: bool
) -> None:
    q = where(
        "(Users.level = 'PLATINUM' OR Clicks.action = 'checkout') AND Clicks.device = 'mobile'"
    )
    assert q.matches(click(action=action, device=device), user(level=level)) is emitted


@pytest.mark.parametrize(
    ("predicate", "emitted"),
    [
        ("NOT Users.level = 'GOLD'", True),
        ("NOT NOT Users.level = 'GOLD'", False),
        ("NOT (Users.level = 'GOLD' OR Clicks.page < 10)", True),
        ("NOT Users.level = 'PLATINUM' AND Clicks.page > 10", False),
        ("NOT (Users.level = 'PLATINUM' AND Clicks.page > 10000)", True),
        ("NOT Clicks.page IN (5535)", False),
    ],
)
def test_not(predicate: str, emitted: bool) -> None:
    assert where(predicate).matches(CLICK, PLATINUM) is emitted


def test_deeply_nested_predicate() -> None:
    q = where(
        "((Users.level = 'PLATINUM' AND (Clicks.page >= 5000 AND Clicks.page < 6000))"
        " OR (Users.level IN ('GOLD') AND NOT Clicks.action <> 'checkout'))"
        " AND Clicks.device IS NOT NULL"
    )
    assert q.matches(CLICK, PLATINUM) is True
    assert q.matches(click(page=7000), PLATINUM) is False
    assert q.matches(click(action="checkout"), GOLD) is True
    assert q.matches(CLICK, GOLD) is False
    assert q.matches(click(device=None), PLATINUM) is False


def test_str_subclass_values_compare_as_strings() -> None:
    class Level(str):
        pass

    q = compile_query(DEFAULT_QUERY)
    assert q.matches(CLICK, user(level=Level("PLATINUM"))) is True
    assert where("Users.level IN ('PLATINUM')").matches(CLICK, user(level=Level("PLATINUM")))


# --------------------------------------------------------------------------------------------
# Refusals: each names the construct


ON = "ON Clicks.user_id = Users.user_id"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (f"SELECT Users.level {JOIN} GROUP BY Users.level", "unsupported construct: GROUP BY"),
        (
            f"SELECT Users.level {JOIN} GROUP BY Users.level HAVING Users.level = 'GOLD'",
            "unsupported construct: GROUP BY",
        ),
        (
            f"SELECT Users.level {JOIN} HAVING Users.level = 'GOLD'",
            "unsupported construct: aggregation without GROUP BY a window",
        ),
        (f"SELECT Clicks.page {JOIN} ORDER BY Clicks.page", "unsupported construct: ORDER BY"),
        (f"SELECT Clicks.page {JOIN} LIMIT 10", "unsupported construct: LIMIT"),
        (f"SELECT Clicks.page {JOIN} LIMIT 10 OFFSET 5", "unsupported construct: LIMIT"),
        (f"SELECT DISTINCT Clicks.page {JOIN}", "unsupported construct: DISTINCT"),
        (
            f"WITH x AS (SELECT 1) SELECT Clicks.page {JOIN}",
            "unsupported construct: WITH",
        ),
        (
            f"SELECT ROW_NUMBER() OVER (ORDER BY Clicks.page) AS n {JOIN}",
            "unsupported construct: window function",
        ),
        (
            f"SELECT SUM(Clicks.page) OVER (PARTITION BY Users.level) AS s {JOIN}",
            "unsupported construct: window function",
        ),
        (f"SELECT COUNT(*) AS n {JOIN}", "aggregation without GROUP BY a window"),
        (f"SELECT MAX(Clicks.page) {JOIN}", "aggregation without GROUP BY a window"),
        (
            f"SELECT Clicks.page {JOIN} WHERE UPPER(Users.level) = 'PLATINUM'",
            "unsupported construct: function call UPPER",
        ),
        (f"SELECT LOWER(Users.name) AS n {JOIN}", "unsupported construct: function call LOWER"),
        (
            f"SELECT Clicks.page {JOIN} WHERE my_udf(Clicks.page) = 1",
            "unsupported construct: function call MY_UDF",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE CAST(Clicks.page AS TEXT) = '1'",
            "unsupported construct: CAST",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.event_time > TIMESTAMP '2026-01-01'",
            "unsupported construct: CAST",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page IN (SELECT 1)",
            "unsupported construct: subquery",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page = (SELECT 1)",
            "unsupported construct: subquery",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE EXISTS (SELECT 1)",
            "unsupported construct: subquery",
        ),
        (
            f"SELECT (SELECT 1) AS one {JOIN}",
            "unsupported construct: subquery",
        ),
        (
            f"SELECT s.page FROM (SELECT * FROM Clicks) s JOIN Users {ON}",
            "unsupported construct: subquery",
        ),
        (
            f"SELECT Clicks.page {JOIN} UNION SELECT Clicks.page {JOIN}",
            "unsupported construct: UNION",
        ),
        (
            f"INSERT INTO VipActions SELECT Clicks.page {JOIN} UNION ALL SELECT Clicks.page {JOIN}",
            "unsupported construct: UNION",
        ),
        (
            f"SELECT Clicks.page {JOIN} INTERSECT SELECT Clicks.page {JOIN}",
            "unsupported construct: INTERSECT",
        ),
        (
            f"SELECT Clicks.page {JOIN} EXCEPT SELECT Clicks.page {JOIN}",
            "unsupported construct: EXCEPT",
        ),
        (f"SELECT Clicks.page FROM Clicks RIGHT JOIN Users {ON}", "unsupported construct: RIGHT"),
        (
            f"SELECT Clicks.page FROM Clicks RIGHT OUTER JOIN Users {ON}",
            "unsupported construct: RIGHT JOIN",
        ),
        (f"SELECT Clicks.page FROM Clicks FULL JOIN Users {ON}", "unsupported construct: FULL"),
        (
            f"SELECT Clicks.page FROM Clicks FULL OUTER JOIN Users {ON}",
            "unsupported construct: FULL JOIN",
        ),
        ("SELECT Clicks.page FROM Clicks CROSS JOIN Users", "unsupported construct: CROSS JOIN"),
        (
            "SELECT Clicks.page FROM Clicks, Users WHERE Clicks.user_id = Users.user_id",
            "unsupported construct: CROSS JOIN",
        ),
        ("SELECT Clicks.page FROM Clicks NATURAL JOIN Users", "unsupported construct: NATURAL"),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users USING (user_id)",
            "unsupported construct: JOIN ... USING",
        ),
        (
            f"SELECT Clicks.page FROM Clicks JOIN Users {ON} JOIN Users u2 "
            "ON Clicks.user_id = u2.user_id",
            "unsupported construct: more than one JOIN",
        ),
        (
            "SELECT a.page FROM Clicks a JOIN Clicks b ON a.user_id = b.user_id",
            "unsupported construct: joining the clicks stream Clicks to itself",
        ),
        (
            "SELECT a.name FROM Users a JOIN Users b ON a.user_id = b.user_id",
            "unsupported construct: joining the users stream Users to itself",
        ),
        (
            "SELECT Clicks.page FROM Users LEFT JOIN Clicks ON Clicks.user_id = Users.user_id",
            "unsupported construct: Users LEFT JOIN Clicks",
        ),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users",
            r"unsupported construct: CROSS JOIN \(JOIN without ON",
        ),
        ("SELECT Clicks.page FROM Clicks LEFT JOIN Users", "LEFT JOIN without ON"),
        ("SELECT Clicks.page FROM Clicks INNER JOIN Users", "INNER JOIN without ON"),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users ON Clicks.page = Users.user_id",
            "unsupported construct: join condition other than Clicks.user_id = Users.user_id",
        ),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users ON Clicks.user_id = Clicks.user_id",
            "unsupported construct: join condition",
        ),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id "
            "AND Users.level = 'PLATINUM'",
            "unsupported construct: join condition",
        ),
        (
            "SELECT Clicks.page FROM Clicks JOIN Users ON Clicks.user_id <> Users.user_id",
            "unsupported construct: join condition",
        ),
        (
            "SELECT c.page FROM Clicks c JOIN Users u ON TRUE",
            r"unsupported construct: join condition other than c\.user_id = u\.user_id",
        ),
        (
            f"SELECT Clicks.page + 1 AS next_page {JOIN}",
            r"unsupported construct: arithmetic \(\+\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page - 1 > 0",
            r"unsupported construct: arithmetic \(-\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page * 2 > 0",
            r"unsupported construct: arithmetic \(\*\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page / 2 > 0",
            r"unsupported construct: arithmetic \(/\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page % 2 = 0",
            r"unsupported construct: arithmetic \(%\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE -Clicks.page < 0",
            r"unsupported construct: arithmetic \(unary -\)",
        ),
        (
            f"SELECT Users.name || '!' AS shout {JOIN}",
            r"unsupported construct: string concatenation \(\|\|\)",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Users.name LIKE 'Dr.%'",
            "unsupported construct: LIKE",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Users.name NOT LIKE 'Dr.%'",
            "unsupported construct: LIKE",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Users.name ILIKE 'dr.%'",
            "unsupported construct: ILIKE",
        ),
        (
            f"SELECT CASE WHEN Clicks.page > 1 THEN 'a' END AS x {JOIN}",
            "unsupported construct: CASE",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE CASE WHEN Clicks.page > 1 THEN TRUE END",
            "unsupported construct: CASE",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page BETWEEN SYMMETRIC 1 AND 2",
            "unsupported construct: BETWEEN SYMMETRIC",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page IS DISTINCT FROM 1",
            "unsupported construct: IS DISTINCT FROM",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE (Clicks.page > 1) = TRUE",
            "unsupported construct: condition used as a value",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page IN (1, Users.level)",
            "unsupported construct: non-literal in IN list",
        ),
        (
            f"SELECT Clicks.page {JOIN} WHERE Clicks.page = ?",
            "unsupported construct: query parameter",
        ),
        (f"SELECT 'x' AS const {JOIN}", "unsupported construct: literal in the SELECT list"),
        (f"SELECT 1 {JOIN}", "unsupported construct: literal in the SELECT list"),
        (
            f"SELECT Clicks.page > 1 AS big {JOIN}",
            "unsupported construct: condition in the SELECT list",
        ),
        (f"SELECT * EXCEPT (agent) {JOIN}", r"unsupported construct: \* with EXCEPT"),
        (
            f"SELECT Clicks.page {JOIN}; SELECT Clicks.page {JOIN}",
            "unsupported construct: multiple statements",
        ),
        (f"{DEFAULT_QUERY}; {DEFAULT_QUERY}", "unsupported construct: multiple statements"),
        ("UPDATE Users SET level = 'PLATINUM'", "unsupported construct: UPDATE statement"),
        ("DELETE FROM Users", "unsupported construct: DELETE statement"),
        ("CREATE TABLE t (a INT)", "unsupported construct: CREATE statement"),
        ("DROP TABLE Users", "unsupported construct: DROP statement"),
        ("INSERT INTO VipActions VALUES (1)", "unsupported construct: VALUES"),
        (
            f"INSERT INTO VipActions (a) SELECT Clicks.page {JOIN}",
            "unsupported construct: INSERT column list",
        ),
        (
            f"INSERT OVERWRITE TABLE VipActions SELECT Clicks.page {JOIN}",
            "unsupported construct: OVERWRITE",
        ),
        (f"SELECT kafka.Clicks.page {JOIN}", "unsupported construct: multi-part column name"),
        (
            "SELECT Clicks.page FROM kafka.Clicks JOIN Users ON Clicks.user_id = Users.user_id",
            "unsupported construct: qualified stream name",
        ),
        (
            "SELECT c.page FROM Clicks AS c(a, b) JOIN Users ON c.user_id = Users.user_id",
            "unsupported construct: column aliases on a stream",
        ),
    ],
)
def test_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(sql)


def test_refusal_points_at_the_offending_expression() -> None:
    with pytest.raises(QueryError) as info:
        compile_query(f"SELECT Clicks.page {JOIN} WHERE UPPER(Users.level) = 'PLATINUM'")
    assert "UPPER(Users.level)" in str(info.value)


def test_refusals_are_reported_in_clause_order() -> None:
    with pytest.raises(QueryError, match="unsupported construct: DISTINCT"):
        compile_query(f"SELECT DISTINCT Clicks.page {JOIN} ORDER BY Clicks.page LIMIT 1")
    with pytest.raises(QueryError, match="unsupported construct: ORDER BY"):
        compile_query(f"SELECT COUNT(*) {JOIN} GROUP BY Users.level ORDER BY 1")


# --------------------------------------------------------------------------------------------
# Cross-check with a real SQL engine: where kinds agree, we must keep exactly the rows DuckDB keeps.

DB_USERS: list[dict[str, object]] = [
    {"user_id": "u1", "name": "Ann", "level": "PLATINUM"},
    {"user_id": "u2", "name": "Bob", "level": "GOLD"},
    {"user_id": "u3", "name": "Cy", "level": "PLATINUM"},
    {"user_id": "u4", "name": None, "level": None},
]
DB_CLICKS: list[dict[str, object]] = [
    {"user_id": "u1", "page": 5535, "action": "selection", "device": "computer", "agent": "a1",
     "event_time": "2026-11-27T20:52:23.123Z"},
    {"user_id": "u2", "page": 10, "action": "checkout", "device": "mobile", "agent": "a2",
     "event_time": "2026-11-26T10:00:00.000Z"},
    {"user_id": "u3", "page": None, "action": None, "device": "tablet", "agent": "a3",
     "event_time": "2026-11-27T00:00:00.000Z"},
    {"user_id": "nobody", "page": -5, "action": "checkout", "device": None, "agent": "a4",
     "event_time": "2026-11-28T00:00:00.000Z"},
    {"user_id": "u4", "page": 0, "action": "products", "device": "mobile", "agent": "a5",
     "event_time": None},
]  # fmt: skip

CROSS_CHECKED = [
    "Users.level = 'PLATINUM'",
    "Users.level <> 'PLATINUM'",
    "Users.level != 'GOLD'",
    "Users.level IS NULL",
    "Users.level IS NOT NULL",
    "Users.user_id IS NULL",
    "Clicks.page > 0",
    "Clicks.page >= 0",
    "Clicks.page < 10",
    "Clicks.page <= 10",
    "Clicks.page = 10.0",
    "Clicks.page > -5.5",
    "0 < Clicks.page",
    "Clicks.page IN (10, 5535)",
    "Clicks.page IN (10, NULL)",
    "Clicks.page NOT IN (10, 5535)",
    "Clicks.page NOT IN (10, NULL)",
    "Clicks.page BETWEEN 0 AND 10",
    "Clicks.page NOT BETWEEN 0 AND 10",
    "Clicks.page BETWEEN 0 AND NULL",
    "Clicks.page NOT BETWEEN 1 AND NULL",
    "Clicks.action = NULL",
    "Clicks.action <> NULL OR Clicks.page > 0",
    "NOT (Clicks.action = 'checkout')",
    "NOT (Clicks.action = 'checkout' AND Clicks.device = 'mobile')",
    "NOT (Clicks.action = 'checkout' OR Clicks.device = 'mobile')",
    "Clicks.action = 'checkout' OR Users.level = 'PLATINUM' AND Clicks.page > 100",
    "(Clicks.action = 'checkout' OR Users.level = 'PLATINUM') AND Clicks.page > 100",
    "Users.level IN ('PLATINUM', 'GOLD') AND NOT Clicks.device IS NULL",
    "Users.level NOT IN ('GOLD') OR Clicks.page IS NULL",
    "Users.name < Clicks.action",
    "Clicks.user_id = Users.user_id",
    "Clicks.event_time >= '2026-11-27T00:00:00.000Z'",
    "NOT (Clicks.event_time < '2026-11-27T00:00:00.000Z')",
    "TRUE",
    "NULL",
    "NOT NULL",
    "1 = 1",
]


@pytest.fixture(scope="module")
def duck() -> Iterator[Any]:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE Clicks (user_id VARCHAR, page BIGINT, action VARCHAR, device VARCHAR,"
        " agent VARCHAR, event_time VARCHAR)"
    )
    con.execute("CREATE TABLE Users (user_id VARCHAR, name VARCHAR, level VARCHAR)")
    con.executemany(
        "INSERT INTO Clicks VALUES (?, ?, ?, ?, ?, ?)",
        [[c[k] for k in CLICK_COLUMNS] for c in DB_CLICKS],
    )
    con.executemany(
        "INSERT INTO Users VALUES (?, ?, ?)", [[u[k] for k in USER_COLUMNS] for u in DB_USERS]
    )
    yield con
    con.close()


@pytest.mark.parametrize("kind", ["JOIN", "LEFT JOIN"])
@pytest.mark.parametrize("predicate", CROSS_CHECKED)
def test_agrees_with_duckdb(duck: Any, kind: str, predicate: str) -> None:
    sql = (
        f"SELECT Clicks.agent FROM Clicks {kind} Users ON Clicks.user_id = Users.user_id"
        f" WHERE {predicate}"
    )
    expected = sorted(row[0] for row in duck.execute(sql).fetchall())
    q = compile_query(sql)
    users = {u["user_id"]: u for u in DB_USERS}
    ours = sorted(
        str(row["agent"])
        for c in DB_CLICKS
        if (row := q.evaluate(c, users.get(str(c["user_id"])))) is not None
    )
    assert ours == expected


def test_duckdb_cross_check_is_not_vacuous(duck: Any) -> None:
    outcomes = {
        tuple(
            sorted(
                r[0]
                for r in duck.execute(
                    "SELECT Clicks.agent FROM Clicks LEFT JOIN Users"
                    f" ON Clicks.user_id = Users.user_id WHERE {p}"
                ).fetchall()
            )
        )
        for p in CROSS_CHECKED
    }
    assert len(outcomes) >= 10
