"""The generator's visits: deterministic, in event-time order, bursts apart by more than the
session gap, carts before checkouts, valid clicks, and level changes now and then."""

from __future__ import annotations

from collections import defaultdict
from itertools import islice, pairwise

from clickstream_common.contracts import decode_click, decode_json
from clickstream_common.records import Record
from clickstream_generator.data import DataConfig, users
from clickstream_generator.visits import MINUTE, TimedClick, Upgrade, VisitModel, visits

CONFIG = DataConfig(seed=3, users=200)
START = 1_764_000_000_000


def _take(n: int) -> list[TimedClick | Upgrade]:
    return list(islice(visits(CONFIG, users(CONFIG), START), n))


def test_the_same_seed_gives_the_same_visits() -> None:
    assert _take(3000) == _take(3000)


def test_events_come_in_time_order_and_clicks_are_valid() -> None:
    items = _take(5000)
    assert all(a.event_ms <= b.event_ms for a, b in pairwise(items))
    for item in items:
        if isinstance(item, TimedClick):
            record = Record("click", 0, 0, item.click.key, item.click.value, 1)
            assert decode_click(record).event_time_ms == item.event_ms


def test_visits_are_apart_by_more_than_the_session_gap_and_check_out_after_a_cart() -> None:
    times: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in _take(20_000):
        if isinstance(item, TimedClick):
            row = decode_json(item.click.value)
            times[row["user_id"]].append((item.event_ms, row["action"]))
    model = VisitModel()
    visits_seen = checkouts = 0
    for clicks in times.values():
        bursts = [[clicks[0][1]]]
        for (before, _), (after, action) in pairwise(clicks):
            gap = after - before
            assert gap <= model.think_ms[1] or gap >= model.away_ms[0]
            if gap >= model.away_ms[0]:
                bursts.append([])
            bursts[-1].append(action)
        for burst in bursts[:-1]:  # the last visit may still be going on
            visits_seen += 1
            if "checkout" in burst:
                checkouts += 1
                assert burst[-2:] == ["cart", "checkout"]
    assert visits_seen > 500
    assert 0.05 < checkouts / visits_seen < 0.4
    assert model.away_ms[0] > 30 * MINUTE


def test_some_users_change_level() -> None:
    upgrades = [item for item in _take(20_000) if isinstance(item, Upgrade)]
    assert upgrades
    levels = {row["user_id"]: row["level"] for row in users(CONFIG)}
    assert any(levels[u.user["user_id"]] != u.user["level"] for u in upgrades)
