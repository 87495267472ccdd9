"""The users table with a bounded history of versions per user, for as-of joins.

One writer (the topic reader) and many readers (HTTP threads). A user's history is an immutable
tuple swapped in whole, so lookups need no lock and never see a half-applied change.

Memory is the constraint at a million users, so a version is one small tuple holding the user's
fields itself (no separate User object), and the level index is a `LevelIndex` of plain lists.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import NamedTuple, cast

from clickstream_common.contracts import User
from clickstream_common.lookup import Found

from clickstream_user_state.level_index import LevelIndex


class Version(NamedTuple):
    """A user as of `valid_from_ms`; the user_id is the table's key. `level` is normalised."""

    valid_from_ms: int
    name: str | None  # None (and level None): deleted by a tombstone from valid_from_ms on
    level: str | None


class Lookup(NamedTuple):
    found: Found
    user: User | None = None
    # True when the event time predates the retained history and the oldest version answered.
    beyond_history: bool = False


# A user's only version is stored bare, a history of several as a tuple of them: most users
# only ever have one, and the wrapper tuple would cost 56 bytes a user, 56 MB a million.
Entry = Version | tuple[Version, ...]

_UNKNOWN = Lookup(Found.UNKNOWN)
_ABSENT = Lookup(Found.ABSENT)
_FOUND = Found.FOUND

# A NamedTuple's own constructor is a Python-level function: a fifth of the restore's CPU went to
# Version(...). The hot paths build them with tuple.__new__ (all fields, in order) instead.
_new = tuple.__new__


def _found(user_id: str, version: Version) -> Lookup:
    user = _new(User, (user_id, version.name, version.level))
    return _new(Lookup, (_FOUND, user, False))


def _versions(entry: Entry) -> tuple[Version, ...]:
    return (entry,) if type(entry) is Version else cast(tuple[Version, ...], entry)


def _current(entry: Entry) -> Version:
    return entry if type(entry) is Version else cast(tuple[Version, ...], entry)[-1]


class UserStore:
    def __init__(self, max_versions: int = 16) -> None:
        if max_versions < 1:
            raise ValueError("max_versions must be at least 1")
        self._max_versions = max_versions
        self._table: dict[str, Entry] = {}
        # Users whose oldest versions were dropped: a lookup before them answers with the oldest.
        self._truncated: set[str] = set()
        self._levels = LevelIndex(self._level_of)

    def __len__(self) -> int:
        """Users that currently exist (deleted ones excluded)."""
        return sum(self.levels().values())

    def apply(self, user_id: str, user: User | None, timestamp_ms: int) -> None:
        """Record a new version; a `None` user is a tombstone. Out-of-order times are sorted in."""
        if user is None:
            self.delete(user_id, timestamp_ms)
        else:
            self.put(user_id, timestamp_ms, user.name, user.level)

    def put(self, user_id: str, valid_from_ms: int, name: str, level: str) -> None:
        """Record a version of the user; `level` must already be normalised (upper-case)."""
        version = _new(Version, (valid_from_ms, name, level))
        if self._table.setdefault(user_id, version) is not version:
            self._add(user_id, version)
            return
        self._levels.entered(level, user_id)  # the common case while restoring: a new user

    def delete(self, user_id: str, valid_from_ms: int) -> None:
        """Record a tombstone: the user is absent from `valid_from_ms` on."""
        if user_id in self._table:  # deleting a user we never had changes nothing
            self._add(user_id, Version(valid_from_ms, None, None))

    def apply_all(self, changes: Iterable[tuple[str, User | None, int]]) -> None:
        for user_id, user, timestamp_ms in changes:
            self.apply(user_id, user, timestamp_ms)

    def _add(self, user_id: str, version: Version) -> None:
        history = _versions(self._table[user_id])
        before = history[-1].level
        if history[-1].valid_from_ms <= version.valid_from_ms:
            updated = (*history, version)
        else:
            at = bisect_right([v.valid_from_ms for v in history], version.valid_from_ms)
            updated = (*history[:at], version, *history[at:])
        if len(updated) > self._max_versions:
            updated = updated[-self._max_versions :]
            self._truncated.add(user_id)
        self._table[user_id] = updated
        after = updated[-1].level
        if before != after:  # the table is updated first: the index checks candidates against it
            if after is not None:
                self._levels.entered(after, user_id)
            if before is not None:
                self._levels.left(before)

    def _level_of(self, user_id: str) -> str | None:
        entry = self._table.get(user_id)
        return None if entry is None else _current(entry).level

    def latest(self, user_id: str) -> Lookup:
        entry = self._table.get(user_id)
        if entry is None:
            return _UNKNOWN
        version = _current(entry)
        if version.name is None:
            return _ABSENT
        return _found(user_id, version)

    def as_of(self, user_id: str, event_time_ms: int) -> Lookup:
        """The version valid at `event_time_ms`: the last one that started at or before it."""
        entry = self._table.get(user_id)
        if entry is None:
            return _UNKNOWN
        if type(entry) is Version:
            if entry.valid_from_ms <= event_time_ms:
                version = entry
            elif user_id in self._truncated:
                return self._beyond_history(user_id, entry)
            else:
                return _ABSENT
        else:
            history = cast(tuple[Version, ...], entry)
            index = bisect_right([v.valid_from_ms for v in history], event_time_ms)
            if index == 0:
                if user_id in self._truncated:
                    return self._beyond_history(user_id, history[0])
                return _ABSENT
            version = history[index - 1]
        if version.name is None:
            return _ABSENT
        # _found(user_id, version) inlined: this runs once per key of every batch lookup.
        return _new(Lookup, (_FOUND, _new(User, (user_id, version.name, version.level)), False))

    @staticmethod
    def _beyond_history(user_id: str, oldest: Version) -> Lookup:
        if oldest.name is None:
            return Lookup(Found.ABSENT, None, beyond_history=True)
        return Lookup(_FOUND, User(user_id, oldest.name, cast(str, oldest.level)), True)

    def lookup(self, user_id: str, event_time_ms: int | None) -> Lookup:
        """As-of when a time is given, else the current version."""
        if event_time_ms is None:
            return self.latest(user_id)
        return self.as_of(user_id, event_time_ms)

    def by_level(self, level: str) -> list[User]:
        """Current users of `level` (any case), by user_id."""
        wanted = level.upper()
        table = self._table
        found: list[User] = []
        for user_id in self._levels.users_at(wanted):
            version = _current(table[user_id])
            if version.level == wanted:  # still: the writer may have moved on meanwhile
                found.append(User(user_id, cast(str, version.name), version.level))
        return found

    def levels(self) -> dict[str, int]:
        """Current users per level; a level that had users and has none left shows 0."""
        return self._levels.counts()
