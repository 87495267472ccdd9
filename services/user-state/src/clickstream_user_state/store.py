"""The users table with a bounded history of versions per user, for as-of joins.

One writer (the topic reader) and many readers (HTTP threads). A user's history is an immutable
tuple swapped in whole, so lookups need no lock and never see a half-applied change.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable
from enum import Enum
from typing import NamedTuple, cast

from clickstream_common.contracts import User


class Found(Enum):
    """Why a lookup did or did not return a user; the enricher acts differently on each."""

    FOUND = "found"
    # Never seen: the user may still be on its way, so the click is worth holding back.
    UNKNOWN = "unknown"
    # Seen, but deleted at that time or first seen after it: waiting cannot change the answer.
    ABSENT = "absent"


class Version(NamedTuple):
    valid_from_ms: int
    user: User | None  # None: deleted by a tombstone from valid_from_ms on


class Lookup(NamedTuple):
    found: Found
    user: User | None = None
    # True when the event time predates the retained history and the oldest version answered.
    beyond_history: bool = False


def _versions(entry: Version | tuple[Version, ...]) -> tuple[Version, ...]:
    return (entry,) if type(entry) is Version else cast(tuple[Version, ...], entry)


_UNKNOWN = Lookup(Found.UNKNOWN)
_ABSENT = Lookup(Found.ABSENT)


class UserStore:
    def __init__(self, max_versions: int = 16) -> None:
        if max_versions < 1:
            raise ValueError("max_versions must be at least 1")
        self._max_versions = max_versions
        # Most users only ever have one version: it is stored bare, a history of several as a
        # tuple. The wrapper tuple would cost 56 bytes a user, 56 MB a million.
        self._history: dict[str, Version | tuple[Version, ...]] = {}
        # Users whose oldest versions were dropped: a lookup before them answers with the oldest.
        self._truncated: set[str] = set()
        self._by_level: dict[str, set[str]] = {}
        self._level_lock = threading.Lock()

    def __len__(self) -> int:
        """Users that currently exist (deleted ones excluded)."""
        return sum(len(ids) for ids in self._by_level.values())

    def apply(self, user_id: str, user: User | None, timestamp_ms: int) -> None:
        """Record a new version; a `None` user is a tombstone. Out-of-order times are sorted in."""
        entry = self._history.get(user_id)
        if entry is None:
            if user is not None:  # the common case while restoring: a user's first version
                self._history[user_id] = Version(timestamp_ms, user)
                self._reindex(user_id, None, user)
            return  # deleting a user we never had changes nothing
        history = _versions(entry)
        version = Version(timestamp_ms, user)
        if history[-1].valid_from_ms <= timestamp_ms:
            updated = (*history, version)
        else:
            at = bisect_right([v.valid_from_ms for v in history], timestamp_ms)
            updated = (*history[:at], version, *history[at:])
        if len(updated) > self._max_versions:
            updated = updated[-self._max_versions :]
            self._truncated.add(user_id)
        self._history[user_id] = updated
        self._reindex(user_id, history[-1].user, updated[-1].user)

    def _reindex(self, user_id: str, before: User | None, after: User | None) -> None:
        old_level = before.level if before else None
        new_level = after.level if after else None
        if old_level == new_level:
            return
        with self._level_lock:
            if old_level is not None:
                self._by_level[old_level].discard(user_id)
            if new_level is not None:
                self._by_level.setdefault(new_level, set()).add(user_id)

    def latest(self, user_id: str) -> Lookup:
        entry = self._history.get(user_id)
        if entry is None:
            return _UNKNOWN
        last = entry if type(entry) is Version else cast(tuple[Version, ...], entry)[-1]
        user = last.user
        return Lookup(Found.FOUND, user) if user is not None else _ABSENT

    def as_of(self, user_id: str, event_time_ms: int) -> Lookup:
        """The version valid at `event_time_ms`: the last one that started at or before it."""
        entry = self._history.get(user_id)
        if entry is None:
            return _UNKNOWN
        history = _versions(entry)
        if len(history) == 1:
            index = 1 if history[0].valid_from_ms <= event_time_ms else 0
        else:
            index = bisect_right([v.valid_from_ms for v in history], event_time_ms)
        if index == 0:
            if user_id not in self._truncated:
                return _ABSENT
            oldest = history[0].user
            if oldest is None:
                return Lookup(Found.ABSENT, None, beyond_history=True)
            return Lookup(Found.FOUND, oldest, beyond_history=True)
        user = history[index - 1].user
        return Lookup(Found.FOUND, user) if user is not None else _ABSENT

    def lookup(self, user_id: str, event_time_ms: int | None) -> Lookup:
        """As-of when a time is given, else the current version."""
        if event_time_ms is None:
            return self.latest(user_id)
        return self.as_of(user_id, event_time_ms)

    def by_level(self, level: str) -> list[User]:
        with self._level_lock:
            ids = list(self._by_level.get(level.upper(), ()))
        users = (self.latest(user_id).user for user_id in ids)
        return sorted((u for u in users if u is not None), key=lambda u: u.user_id)

    def levels(self) -> dict[str, int]:
        with self._level_lock:
            return {level: len(ids) for level, ids in sorted(self._by_level.items())}

    def apply_all(self, changes: Iterable[tuple[str, User | None, int]]) -> None:
        for user_id, user, timestamp_ms in changes:
            self.apply(user_id, user, timestamp_ms)
