"""Sessions, independently: VipActions-shaped records with sessions, think times, out-of-order
and late clicks, and DuckDB sessionizing the same records with window functions, to compare the
enricher's final rows with row for row. For a query over Clicks JOIN Users, DuckDB also joins
each click to its user's version as of the click (an ASOF JOIN over the users topic's record
timestamps, which is when user-state takes a version to be valid from)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass

import duckdb

from tests.support.oracle import KafkaRow, iso_millis

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
GAP_MS = 30 * MINUTE
SESSIONS_SQL = """INSERT INTO VipSessions
SELECT user_id,
       SESSION_START(event_time, INTERVAL '30' MINUTE) AS session_start,
       SESSION_END(event_time, INTERVAL '30' MINUTE) AS session_end,
       COUNT(*) AS clicks,
       COUNT(*) FILTER (WHERE action = 'checkout') AS checkouts,
       SUM(CASE WHEN action = 'cart' THEN 1 ELSE 0 END) AS carts,
       COUNT(DISTINCT page) AS pages
FROM VipActions
GROUP BY SESSION(event_time, INTERVAL '30' MINUTE), user_id"""

JOINED_SESSIONS_SQL = """INSERT INTO VipSessions
SELECT Clicks.user_id, Users.level,
       SESSION_START(Clicks.event_time, INTERVAL '30' MINUTE) AS session_start,
       SESSION_END(Clicks.event_time, INTERVAL '30' MINUTE) AS session_end,
       COUNT(*) AS clicks,
       COUNT(*) FILTER (WHERE Clicks.action = 'checkout') AS checkouts,
       SUM(CASE WHEN Clicks.action = 'cart' THEN 1 ELSE 0 END) AS carts,
       COUNT(DISTINCT Clicks.page) AS pages
FROM Clicks JOIN Users ON Clicks.user_id = Users.user_id
WHERE Users.level = 'PLATINUM'
GROUP BY SESSION(Clicks.event_time, INTERVAL '30' MINUTE), Clicks.user_id, Users.level"""

Session = tuple[str, str, str, int, int, int, int, str]
"""user_id, window_start, window_end, clicks, checkouts, carts, pages, last_event_time."""


@dataclass(frozen=True)
class Action:
    user_id: str
    event_ms: int
    action: str
    page: int

    def click(self) -> bytes:
        """As a click record (docs/ARCHITECTURE.md § Data contracts)."""
        return json.dumps(
            {
                "user_id": self.user_id,
                "page": self.page,
                "action": self.action,
                "device": "desktop",
                "agent": "it",
                "event_time": self.event_ms,
            }
        ).encode()

    def value(self) -> bytes:
        return json.dumps(
            {
                "user_id": self.user_id,
                "name": f"VIP {self.user_id}",
                "page": self.page,
                "action": self.action,
                "event_time": iso_millis(self.event_ms),
            }
        ).encode()


def vip_actions(seed: int, users: int, start_ms: int) -> list[Action]:
    """Each user visits several times: bursts of clicks a few minutes apart, away for longer
    than the gap between visits, some visits ending in a checkout; emitted roughly in time
    order, with clicks up to 20 s out of order (within the allowed lateness)."""
    rng = random.Random(seed)
    actions: list[Action] = []
    for u in range(users):
        user_id = f"vip-{u:03d}"
        t = start_ms + rng.randrange(0, 60 * MINUTE)
        for _ in range(rng.randint(1, 4)):
            for _ in range(rng.randint(1, 12)):
                action = rng.choice(["view", "view", "view", "cart", "selection"])
                actions.append(Action(user_id, t, action, rng.randrange(1, 40)))
                t += rng.randrange(10_000, 12 * MINUTE)
            if rng.random() < 0.4:
                actions.append(Action(user_id, t, "checkout", 999))
            t += GAP_MS + rng.randrange(1, 3 * 60 * MINUTE)
    jitter = {id(a): a.event_ms + rng.randrange(-20_000, 20_000) for a in actions}
    return sorted(actions, key=lambda a: jitter[id(a)])


def expected_sessions(rows: list[Action]) -> set[Session]:
    """Flink's sessions by DuckDB: a click starts a new session when it is a gap or more after
    the user's previous click."""
    con = duckdb.connect()
    con.execute("CREATE TABLE a (user_id VARCHAR, ts BIGINT, action VARCHAR, page INTEGER)")
    con.executemany(
        "INSERT INTO a VALUES (?, ?, ?, ?)",
        [(r.user_id, r.event_ms, r.action, r.page) for r in rows],
    )
    result = con.execute(
        f"""
        WITH flagged AS (
            SELECT *, CASE WHEN ts - LAG(ts) OVER (PARTITION BY user_id ORDER BY ts) < {GAP_MS}
                      THEN 0 ELSE 1 END AS starts
            FROM a),
        numbered AS (
            SELECT *, SUM(starts) OVER (PARTITION BY user_id ORDER BY ts
                                        ROWS UNBOUNDED PRECEDING) AS session
            FROM flagged)
        SELECT user_id, MIN(ts), MAX(ts), COUNT(*), COUNT(*) FILTER (WHERE action = 'checkout'),
               SUM(CASE WHEN action = 'cart' THEN 1 ELSE 0 END), COUNT(DISTINCT page)
        FROM numbered GROUP BY user_id, session"""
    ).fetchall()
    return {
        (
            user,
            iso_millis(first),
            iso_millis(last + GAP_MS),
            n,
            checkouts,
            carts,
            pages,
            iso_millis(last),
        )
        for user, first, last, n, checkouts, carts, pages in result
    }


@dataclass
class Outcome:
    finals: list[Session]
    problems: list[str]


def read_outcome(rows: list[KafkaRow]) -> Outcome:
    """The final rows, and every way the updates disagree with them: an update for a window
    that never got a final nor a retraction, or a count a later row went back on."""
    finals: list[Session] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    closed: set[tuple[str, str]] = set()
    by_user: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.partition, r.offset)):
        assert row.value is not None
        by_user[str(json.loads(row.value)["user_id"])].append(json.loads(row.value))
    for user, values in by_user.items():
        for value in values:
            identity = (user, str(value["window_start"]))
            if identity in closed and not value["retract"]:
                problems.append(f"a row after the window closed: {value}")
            if value["retract"]:
                closed.add(identity)
                seen.pop(identity, None)
                continue
            clicks = int(value["clicks"])  # type: ignore[call-overload]
            if clicks < seen.get(identity, 0):
                problems.append(f"clicks went back from {seen[identity]}: {value}")
            seen[identity] = clicks
            if value["final"]:
                closed.add(identity)
                finals.append(
                    (
                        user,
                        str(value["session_start"]),
                        str(value["session_end"]),
                        clicks,
                        int(value["checkouts"]),  # type: ignore[call-overload]
                        int(value["carts"]),  # type: ignore[call-overload]
                        int(value["pages"]),  # type: ignore[call-overload]
                        str(value["last_event_time"]),
                    )
                )
        open_ = [identity for identity in seen if identity not in closed]
        problems += [f"never closed nor retracted: {identity}" for identity in open_]
    return Outcome(finals, problems)


def as_of_platinum(users: list[KafkaRow], clicks: list[KafkaRow]) -> tuple[list[Action], set[int]]:
    """The clicks whose user is PLATINUM at the click's event time, and the indexes (in
    `clicks`) of those with no version of their user then (never seen, or first seen later)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE u (user_id VARCHAR, level VARCHAR, valid_from BIGINT)")
    con.executemany(
        "INSERT INTO u VALUES (?, ?, ?)",
        [
            (v["user_id"], str(v["level"]).upper(), row.timestamp_ms)
            for row in users
            if row.value is not None
            for v in [json.loads(row.value)]
        ],
    )
    con.execute(
        "CREATE TABLE c (i INTEGER, user_id VARCHAR, ts BIGINT, action VARCHAR, page INTEGER)"
    )
    con.executemany(
        "INSERT INTO c VALUES (?, ?, ?, ?, ?)",
        [
            (i, v["user_id"], v["event_time"], v["action"], v["page"])
            for i, row in enumerate(clicks)
            if row.value is not None
            for v in [json.loads(row.value)]
        ],
    )
    joined = con.execute(
        "SELECT c.i, c.user_id, c.ts, c.action, c.page, u.level FROM c "
        "ASOF LEFT JOIN u ON c.user_id = u.user_id AND c.ts >= u.valid_from"
    ).fetchall()
    platinum = [
        Action(user, ts, action, page)
        for _, user, ts, action, page, level in joined
        if level == "PLATINUM"
    ]
    return platinum, {i for i, *_, level in joined if level is None}


def user_versions(start_ms: int, known: int) -> list[tuple[str, str, int]]:
    """(user_id, level, valid from) for vip-000 up to `known` (the rest are never seen): PLATINUM
    all day, upgraded or downgraded two hours in, GOLD all day, or signed up (PLATINUM) an hour
    in, so their earlier clicks have no user at their time. user-state takes a user record's
    timestamp as the time its version is valid from."""
    versions = []
    for u in range(known):
        user_id = f"vip-{u:03d}"
        before, mid_day = start_ms - DAY, start_ms + 2 * HOUR
        kind = u % 6
        if kind in (0, 1):
            versions.append((user_id, "PLATINUM", before))
        elif kind == 2:
            versions += [(user_id, "GOLD", before), (user_id, "PLATINUM", mid_day)]
        elif kind == 3:
            versions += [(user_id, "PLATINUM", before), (user_id, "SILVER", mid_day)]
        elif kind == 4:
            versions.append((user_id, "GOLD", before))
        else:
            versions.append((user_id, "PLATINUM", start_ms + HOUR))
    return versions


def user_record(user_id: str, level: str) -> bytes:
    return json.dumps({"user_id": user_id, "name": user_id.title(), "level": level}).encode()
