"""LevelIndex: counts and listings stay exact while its lists hold stale ids, and stay bounded."""

from __future__ import annotations

from clickstream_user_state.level_index import STALE_FACTOR, STALE_SLACK, LevelIndex


class Table:
    """The current level of each user, as the store would answer it."""

    def __init__(self) -> None:
        self.levels: dict[str, str | None] = {}
        self.index = LevelIndex(self.levels.get)

    def set(self, user_id: str, level: str | None) -> None:
        before = self.levels.get(user_id)
        self.levels[user_id] = level
        if before != level:
            if level is not None:
                self.index.entered(level, user_id)
            if before is not None:
                self.index.left(before)


def test_listing_is_current_users_sorted_without_repeats() -> None:
    table = Table()
    table.set("b", "GOLD")
    table.set("a", "GOLD")
    table.set("c", "SILVER")
    table.set("b", "SILVER")
    table.set("b", "GOLD")  # back again: listed twice under GOLD, shown once
    table.set("a", None)  # deleted
    assert table.index.users_at("GOLD") == ["b"]
    assert table.index.users_at("SILVER") == ["c"]
    assert table.index.users_at("PLATINUM") == []
    assert table.index.counts() == {"GOLD": 1, "SILVER": 1}


def test_counts_keep_levels_that_emptied() -> None:
    table = Table()
    table.set("a", "GOLD")
    table.set("a", "PLATINUM")
    assert table.index.counts() == {"GOLD": 0, "PLATINUM": 1}


def test_lists_are_rebuilt_once_mostly_stale() -> None:
    table = Table()
    for i in range(3 * STALE_SLACK):
        table.set(str(i), "GOLD")
        table.set(str(i), "SILVER")  # every one leaves GOLD again
    listed = len(table.index._listed["GOLD"])
    assert listed <= STALE_FACTOR * 0 + STALE_SLACK
    assert table.index.users_at("GOLD") == []
    assert table.index.counts()["GOLD"] == 0
    assert len(table.index.users_at("SILVER")) == 3 * STALE_SLACK


def test_a_rebuild_keeps_every_current_user() -> None:
    table = Table()
    stay = [f"s{i}" for i in range(10)]
    for user_id in stay:
        table.set(user_id, "GOLD")
    for i in range(4 * STALE_SLACK):  # churn through GOLD until rebuilt, more than once
        table.set(f"x{i}", "GOLD")
        table.set(f"x{i}", None)
    assert len(table.index._listed["GOLD"]) < STALE_SLACK + 2 * len(stay) + 1
    assert table.index.users_at("GOLD") == sorted(stay)
    assert table.index.counts() == {"GOLD": len(stay)}
