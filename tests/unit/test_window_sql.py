"""Windowed SQL: Flink's group windows and aggregates compile into an AggregateQuery, and every
form the enricher cannot honour is refused at start, naming the construct."""

from __future__ import annotations

import pytest
from clickstream_enricher.query import CompiledQuery, QueryError, StreamNames, compile_query
from clickstream_enricher.windows.plan import AggregateQuery
from clickstream_enricher.windows.spec import Hop, Session, Tumble

VIP = StreamNames(clicks="VipActions", output="VipSessions")
SESSION = "SESSION(event_time, INTERVAL '30' MINUTE)"
JOINED = "FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id"


def aggregate(sql: str, streams: StreamNames = VIP) -> AggregateQuery:
    query = compile_query(sql, streams)
    assert isinstance(query, AggregateQuery)
    return query


def test_the_sessions_query_over_vip_actions() -> None:
    query = aggregate(
        f"""INSERT INTO VipSessions
        SELECT user_id, SESSION_START(event_time, INTERVAL '30' MINUTE) AS session_start,
               SESSION_END(event_time, INTERVAL '30' MINUTE) AS session_end,
               COUNT(*) AS clicks,
               COUNT(*) FILTER (WHERE action = 'checkout') AS checkouts,
               SUM(CASE WHEN action = 'cart' THEN 1 ELSE 0 END) AS carts
        FROM VipActions GROUP BY {SESSION}, user_id"""
    )
    assert query.join is None
    assert query.window == Session(gap_ms=30 * 60_000)
    assert query.columns == (
        "user_id",
        "session_start",
        "session_end",
        "clicks",
        "checkouts",
        "carts",
    )
    assert [spec.kind for spec in query.aggregates] == ["count_star", "count_star", "sum"]
    checkout = {"action": "checkout"}
    assert query.aggregates[1].condition is not None
    assert query.aggregates[1].condition(checkout, None) is True
    carts = query.aggregates[2].argument
    assert carts is not None
    assert carts({"action": "cart"}, None) == 1
    assert carts({"action": "view"}, None) == 0


@pytest.mark.parametrize(
    ("group", "window"),
    [
        ("TUMBLE(event_time, INTERVAL '1' DAY)", Tumble(86_400_000)),
        ("TUMBLE(VipActions.event_time, INTERVAL '15' MINUTES)", Tumble(900_000)),
        ("HOP(event_time, INTERVAL '5' MINUTE, INTERVAL '1' HOUR)", Hop(300_000, 3_600_000)),
        ("SESSION(event_time, INTERVAL '90' SECOND)", Session(90_000)),
        ("(SESSION(event_time, INTERVAL 2 HOUR))", Session(7_200_000)),
    ],
)
def test_window_kinds(group: str, window: object) -> None:
    assert (
        aggregate(f"SELECT user_id, COUNT(*) AS n FROM VipActions GROUP BY {group}, user_id").window
        == window
    )


def test_aggregates_and_window_properties() -> None:
    query = aggregate(
        "SELECT v.user_id, TUMBLE_START(v.event_time, INTERVAL '1' DAY) AS day, COUNT(v.page), "
        "COUNT(DISTINCT v.page) AS pages, MIN(page) AS lo, MAX(page) AS hi, AVG(page) AS mean, "
        "SUM(page) AS total FROM VipActions AS v GROUP BY TUMBLE(v.event_time, INTERVAL '1' DAY), "
        "v.user_id"
    )
    assert [spec.kind for spec in query.aggregates] == [
        "count",
        "count_distinct",
        "min",
        "max",
        "avg",
        "sum",
    ]
    assert query.columns == (
        "user_id",
        "day",
        "COUNT(v.page)",
        "pages",
        "lo",
        "hi",
        "mean",
        "total",
    )
    assert query.outputs[1].source == "window_start"


def test_having_reuses_or_adds_aggregates() -> None:
    query = aggregate(
        f"SELECT user_id, COUNT(*) AS n FROM VipActions GROUP BY {SESSION}, user_id "
        "HAVING COUNT(*) > 2 AND MAX(page) >= 10 AND user_id <> 'bot'"
    )
    assert [spec.kind for spec in query.aggregates] == ["count_star", "max"]
    assert query.having is not None
    assert query.having({"k0": "u1", "a0": 3, "a1": 10}, None) is True
    assert query.having({"k0": "u1", "a0": 2, "a1": 10}, None) is False
    assert query.having({"k0": "bot", "a0": 3, "a1": 10}, None) is False


def test_grouping_over_the_join_may_use_either_side() -> None:
    query = aggregate(
        "SELECT Users.user_id, Users.level, COUNT(*) AS clicks "
        f"{JOINED} WHERE Users.level = 'PLATINUM' "
        "GROUP BY TUMBLE(Clicks.event_time, INTERVAL '1' DAY), Users.user_id, Users.level",
        StreamNames(),
    )
    assert query.join == "inner"
    assert query.user_key == 0
    assert query.where is not None
    assert query.keys[1]({}, {"level": "GOLD"}) == "GOLD"


def test_the_seed_join_query_is_still_the_row_by_row_join() -> None:
    assert isinstance(compile_query(f"SELECT Clicks.page {JOINED}"), CompiledQuery)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT page, COUNT(*) FROM VipActions GROUP BY SESSION(event_time, INTERVAL '30' MINUTE), page",
            "must include user_id",
        ),
        ("SELECT user_id, COUNT(*) FROM VipActions GROUP BY user_id", "GROUP BY without a window"),
        (
            f"SELECT user_id, COUNT(*) FROM VipActions GROUP BY {SESSION}, user_id, device",
            "GROUP BY column device is not in the SELECT list",
        ),
        ("SELECT COUNT(*) FROM VipActions", "aggregation without GROUP BY a window"),
        (
            f"SELECT user_id, COUNT(*) FROM VipActions GROUP BY {SESSION}, "
            "TUMBLE(event_time, INTERVAL '1' DAY), user_id",
            "more than one window",
        ),
        (
            "SELECT user_id, COUNT(*) FROM VipActions GROUP BY SESSION(page, INTERVAL '1' MINUTE), user_id",
            "over the input's event time",
        ),
        (
            "SELECT user_id, COUNT(*) FROM VipActions GROUP BY SESSION(event_time, INTERVAL '1' WEEK), user_id",
            "INTERVAL unit",
        ),
        (
            "SELECT user_id, COUNT(*) FROM VipActions GROUP BY SESSION(event_time, INTERVAL '0' MINUTE), user_id",
            "positive whole number",
        ),
        (
            "SELECT user_id, COUNT(*) FROM VipActions GROUP BY SESSION(event_time), user_id",
            "SESSION takes",
        ),
        (
            "SELECT user_id, COUNT(*) FROM VipActions GROUP BY "
            "HOP(event_time, INTERVAL '7' MINUTE, INTERVAL '1' HOUR), user_id",
            "whole multiple of its slide",
        ),
        (
            f"SELECT user_id, page, COUNT(*) FROM VipActions GROUP BY {SESSION}, user_id",
            "neither in GROUP BY nor inside an aggregate",
        ),
        (
            f"SELECT user_id, COUNT(*) FROM VipActions GROUP BY {SESSION}, user_id HAVING page > 1",
            "in HAVING is neither in GROUP BY",
        ),
        (
            f"SELECT user_id, TUMBLE_START(event_time, INTERVAL '30' MINUTE) FROM VipActions "
            f"GROUP BY {SESSION}, user_id",
            "does not match the GROUP BY window",
        ),
        (
            f"SELECT user_id, SESSION_START(event_time, INTERVAL '31' MINUTE) FROM VipActions "
            f"GROUP BY {SESSION}, user_id",
            "does not match the GROUP BY window",
        ),
        (f"SELECT * FROM VipActions GROUP BY {SESSION}, user_id", r"\* in an aggregating SELECT"),
        (
            f"SELECT user_id, COUNT(*) AS final FROM VipActions GROUP BY {SESSION}, user_id",
            "'final' is reserved",
        ),
        (
            f"SELECT user_id, SUM(DISTINCT page) FROM VipActions GROUP BY {SESSION}, user_id",
            r"SUM\(DISTINCT",
        ),
        (
            f"SELECT user_id, SUM(COUNT(*)) FROM VipActions GROUP BY {SESSION}, user_id",
            "aggregate inside an aggregate",
        ),
        (
            f"SELECT user_id, SUM(page + 1) FROM VipActions GROUP BY {SESSION}, user_id",
            r"arithmetic \(\+\)",
        ),
        (
            f"SELECT user_id, COUNT(*) FROM VipActions GROUP BY {SESSION}, user_id ORDER BY 1",
            "ORDER BY",
        ),
        (
            f"SELECT user_id, COUNT(*) FROM VipActions GROUP BY {SESSION}, LOWER(user_id)",
            "GROUP BY function call",
        ),
        (
            f"SELECT user_id, COUNT(*) FROM Foo GROUP BY {SESSION}, user_id",
            "unknown stream 'Foo'",
        ),
        (
            f"SELECT x.user_id, COUNT(*) FROM VipActions AS v GROUP BY {SESSION}, x.user_id",
            "unknown stream or alias 'x'",
        ),
        (
            "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE VipActions, "
            "DESCRIPTOR(event_time), INTERVAL '1' DAY)) GROUP BY window_start, window_end, user_id",
            "cannot parse",
        ),
    ],
)
def test_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        compile_query(sql, VIP)


def test_users_as_the_one_stream_is_refused_with_the_reason() -> None:
    with pytest.raises(QueryError, match="the users stream is a table"):
        compile_query(f"SELECT user_id, COUNT(*) FROM Users GROUP BY {SESSION}, user_id")


def test_a_left_join_groups_by_the_clicks_user_id_only() -> None:
    """Users.user_id is NULL in a LEFT JOIN row without a user: it cannot be the input's key."""
    with pytest.raises(QueryError, match="must include user_id"):
        compile_query(
            "SELECT Users.user_id, COUNT(*) FROM Clicks LEFT JOIN Users "
            "ON Clicks.user_id = Users.user_id "
            "GROUP BY TUMBLE(Clicks.event_time, INTERVAL '1' DAY), Users.user_id"
        )
