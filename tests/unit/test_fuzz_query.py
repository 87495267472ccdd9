"""Property-based tests of the query compiler: any text either compiles or raises QueryError
(the enricher refuses it at start), and a compiled query never raises on any row."""

from __future__ import annotations

import math
import os

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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# Modest by default so the unit suite stays fast; FUZZ_EXAMPLES=20000 for a deeper search.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KEYWORDS = [
    "SELECT", "FROM", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "ON", "USING",
    "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "SYMMETRIC", "INSERT", "INTO",
    "AS", "DISTINCT", "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "UNION", "VALUES", "TRUE",
    "FALSE", "CASE", "WHEN", "THEN", "ELSE", "END", "LIKE", "EXISTS", "WITH", "CAST", "COUNT",
    "OVER", "LATERAL", "EXCEPT", "DELETE", "UPDATE", "SET", "CREATE TABLE", "DROP",
]  # fmt: skip
STREAMS = ["Clicks", "Users", "VipActions", "clicks", '"Users"', "Elsewhere", "db.Clicks"]
ALIASES = ["c", "u", "x", "Clicks", "Users"]
COLUMNS = sorted({*CLICK_COLUMNS, *USER_COLUMNS, "email", "nope"})
OPERATORS = ["=", "<>", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "||", "==", "<=>"]
PUNCTUATION = [",", ".", ";", "(", ")", "*", "?", ":x", "$1", "[", "]", "{", "}"]
LITERALS = [
    "'PLATINUM'", "'gold'", "''", "'it''s'", "0", "-1", "42", "1.5", "-0.0", "1e999", "1e-999",
    "99999999999999999999999", "'é😀'", "NULL", "TRUE", "FALSE", "x'ff'", "DATE '2026-01-01'",
    "'\x00'", "'" + "9" * 5000 + "'",
]  # fmt: skip
# Past Python's 4300-digit limit on int(): such a literal must still compile or be refused.
long_numbers = st.integers(min_value=4290, max_value=4310).map(lambda n: "9" * n)

qualified_columns = st.builds(
    lambda q, c: f"{q}.{c}", st.sampled_from(ALIASES + STREAMS), st.sampled_from([*COLUMNS, "*"])
)
tokens = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(STREAMS),
    st.sampled_from(ALIASES),
    st.sampled_from(COLUMNS),
    qualified_columns,
    st.sampled_from(OPERATORS),
    st.sampled_from(PUNCTUATION),
    st.sampled_from(LITERALS),
    long_numbers,
)
token_soup = st.lists(tokens, max_size=40).map(" ".join)


# A grammar of the query shape the compiler accepts, so many generated queries compile and the
# predicates and projections they produce get exercised, with token noise mixed in.
literals = st.one_of(st.sampled_from(LITERALS), long_numbers)
operand = st.one_of(st.sampled_from(COLUMNS), qualified_columns, literals)
comparison = st.builds(
    lambda a, op, b: f"{a} {op} {b}", operand, st.sampled_from(OPERATORS[:6]), operand
)
in_list = st.builds(
    lambda a, neg, items: f"{a} {neg}IN ({', '.join(items)})",
    operand,
    st.sampled_from(["", "NOT "]),
    st.lists(operand, min_size=0, max_size=4),
)
between = st.builds(lambda a, b, c: f"{a} BETWEEN {b} AND {c}", operand, operand, operand)
is_null = st.builds(lambda a, neg: f"{a} IS {neg}NULL", operand, st.sampled_from(["", "NOT "]))
atom = st.one_of(comparison, in_list, between, is_null, st.sampled_from(["TRUE", "FALSE", "NULL"]))
condition = st.recursive(
    atom,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} OR {b}", inner, inner),
        st.builds(lambda a: f"NOT ({a})", inner),
        st.builds(lambda a: f"(({a}))", inner),
    ),
    max_leaves=8,
)
select_item = st.one_of(
    st.sampled_from(COLUMNS),
    qualified_columns,
    st.builds(lambda c, a: f"{c} AS {a}", qualified_columns, st.sampled_from(["p", "who", "x"])),
    st.just("*"),
    literals,
)
structured = st.builds(
    lambda insert, items, first, a1, join, second, a2, on, where: (
        f"{insert}SELECT {', '.join(items)} FROM {first} {a1} {join} JOIN {second} {a2} "
        f"ON {on}{' WHERE ' + where if where else ''}"
    ),
    st.sampled_from(["", "INSERT INTO VipActions ", "INSERT INTO Other ", "INSERT INTO Clicks "]),
    st.lists(select_item, min_size=1, max_size=4),
    st.sampled_from(["Clicks", "Users", "clicks"]),
    st.sampled_from(["", "c", "AS c", "u"]),
    st.sampled_from(["", "INNER", "LEFT", "LEFT OUTER", "RIGHT", "CROSS"]),
    st.sampled_from(["Users", "Clicks", "Elsewhere"]),
    st.sampled_from(["", "u", "AS u", "c"]),
    st.sampled_from(
        [
            "Clicks.user_id = Users.user_id",
            "c.user_id = u.user_id",
            "u.user_id = c.user_id",
            "c.user_id = Users.user_id",
            "(c.user_id = u.user_id)",
            "c.page = u.user_id",
            "TRUE",
        ]
    ),
    st.one_of(st.none(), condition),
)
with_noise = st.builds(
    lambda sql, at, noise: f"{sql[:at]} {noise} {sql[at:]}",
    structured,
    st.integers(min_value=0, max_value=400),
    tokens,
)
queries = st.one_of(structured, structured, with_noise, token_soup)

# Rows as the enricher could build them, and beyond: any scalar where the contract has another.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included
    st.text(max_size=10),
    st.sampled_from(["PLATINUM", "gold", ""]),
    st.lists(st.integers(), max_size=2),
)
click_rows = st.dictionaries(st.sampled_from([*CLICK_COLUMNS, "extra"]), values)
user_rows = st.one_of(st.none(), st.dictionaries(st.sampled_from([*USER_COLUMNS, "x"]), values))


def compile_or_refuse(sql: str, streams: StreamNames | None = None) -> CompiledQuery | None:
    try:
        return compile_query(sql, streams or StreamNames())
    except QueryError as exc:
        assert str(exc)
        return None


def check_rows(query: CompiledQuery, rows: list[tuple[dict, dict | None]]) -> None:
    for click, user in rows:
        out = query.evaluate(click, user)
        matched = query.matches(click, user)
        projected = query.project(click, user)
        assert isinstance(matched, bool)
        assert list(projected) == list(query.columns)
        if out is None:
            assert not matched
        else:
            assert matched
            assert _same(out, projected)
            if query.join == "inner":
                assert user is not None


def _same(a: dict, b: dict) -> bool:
    """Equal rows, where NaN (never equal to itself) counts as equal to NaN."""

    def norm(v: object) -> object:
        return "NaN" if isinstance(v, float) and math.isnan(v) else v

    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


@FUZZ
@given(sql=st.text(max_size=200))
@example(sql="")
@example(sql="\x00")
@example(sql="(" * 2000)
@example(sql="SELECT " + "(" * 500 + "1" + ")" * 500)
@example(sql="'unterminated")
@example(sql=f"{DEFAULT_QUERY} AND " + " AND ".join(["Clicks.page = 1"] * 990))
@example(sql=f"{DEFAULT_QUERY} OR " + "NOT " * 1000 + "Clicks.page = 1")
@example(sql="SELECT * FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id; DROP TABLE x")
def test_arbitrary_text_compiles_or_raises_query_error(sql):
    compile_or_refuse(sql)


@FUZZ
@given(sql=token_soup)
def test_token_soup_compiles_or_raises_query_error(sql):
    compile_or_refuse(sql)


@FUZZ
@given(
    sql=queries,
    rows=st.lists(st.tuples(click_rows, user_rows), min_size=1, max_size=6),
)
@example(sql=DEFAULT_QUERY, rows=[({"user_id": "1"}, {"level": float("nan")})])
@example(
    sql="SELECT * FROM Clicks c LEFT JOIN Users u ON c.user_id = u.user_id "
    "WHERE c.page IN (1, 'a', NULL) OR u.level BETWEEN 'A' AND 1e999",
    rows=[({"page": [1]}, None), ({"page": float("inf")}, {"level": "B"})],
)
def test_queries_that_compile_evaluate_any_row_without_raising(sql, rows):
    query = compile_or_refuse(sql)
    if query is not None:
        check_rows(query, rows)


@pytest.mark.parametrize(
    "where",
    [
        " AND ".join(["Clicks.page = 1"] * 990),
        " AND ".join(["Clicks.page = 1"] * 1000),
        "(" * 60 + "TRUE" + ")" * 60,
        "NOT " * 200 + "TRUE",
    ],
)
def test_deep_nesting_is_refused_at_compile_time_not_per_row(where):
    """Found by fuzzing: 1000 ANDs or 50 parentheses raised RecursionError out of the compiler,
    and 990 ANDs compiled into 990 nested closures, one stack frame each per evaluated row."""
    with pytest.raises(QueryError, match="nested deeper than"):
        compile_query(f"{DEFAULT_QUERY} AND {where}")


def test_a_long_but_shallow_condition_still_compiles():
    query = compile_query(f"{DEFAULT_QUERY} AND " + " AND ".join(["Clicks.page = 1"] * 40))
    assert query.evaluate({"page": 1}, {"level": "PLATINUM"}) is not None


@FUZZ
@given(
    sql=structured,
    streams=st.builds(
        StreamNames,
        clicks=st.sampled_from(["Clicks", "Users", "c", "Klicks"]),
        users=st.sampled_from(["Users", "Clicks", "u", "People"]),
        output=st.sampled_from(["VipActions", "Clicks", "Other"]),
    ),
)
def test_other_stream_names_compile_or_raise_query_error(sql, streams):
    compile_or_refuse(sql, streams)
