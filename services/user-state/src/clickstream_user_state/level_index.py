"""Which users are at which level, cheaply enough for a million users.

A set of ids per level cost about 32 bytes a user and a third of the restore's CPU. This keeps,
per level, a count of current users and a plain list of the ids that entered it (8 bytes each),
only ever appended to: an id that left the level stays listed until the list is rebuilt, so
listing a level checks each candidate's current level (`level_of`, the table's answer).

One writer (the table's) and any number of readers, with no lock on the hot path: appends and
reference swaps are atomic, and a new level (rare) is added under a lock that readers copying
the counts also take.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# A level's list is rebuilt once it holds this many times its current users, plus some slack so
# that a small level that churns is not rebuilt on every change.
STALE_FACTOR = 2
STALE_SLACK = 1024


class LevelIndex:
    def __init__(self, level_of: Callable[[str], str | None]) -> None:
        self._level_of = level_of
        self._counts: dict[str, int] = {}
        self._listed: dict[str, list[str]] = {}
        self._new_level_lock = threading.Lock()

    def entered(self, level: str, user_id: str) -> None:
        """`user_id` is now at `level`: a new user, or one that changed level."""
        count = self._counts.get(level)
        if count is None:
            with self._new_level_lock:
                self._listed[level] = [user_id]
                self._counts[level] = 1
            return
        self._counts[level] = count + 1
        self._listed[level].append(user_id)

    def left(self, level: str) -> None:
        """A user left `level`: deleted, or now at another one."""
        count = self._counts[level] - 1
        self._counts[level] = count
        if len(self._listed[level]) > STALE_FACTOR * count + STALE_SLACK:
            self._listed[level] = self._current(level)

    def users_at(self, level: str) -> list[str]:
        """The ids of the users at `level` now, sorted."""
        return sorted(self._current(level))

    def _current(self, level: str) -> list[str]:
        level_of = self._level_of
        listed = self._listed.get(level, [])
        return [user_id for user_id in dict.fromkeys(listed) if level_of(user_id) == level]

    def counts(self) -> dict[str, int]:
        """Current users per level (levels that ever had one included), by level name."""
        with self._new_level_lock:
            counts = dict(self._counts)
        return dict(sorted(counts.items()))
