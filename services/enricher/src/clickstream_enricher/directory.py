"""What the enricher needs from user-state, independent of how it is reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypedDict

import msgspec
from clickstream_common.contracts import User
from clickstream_common.lookup import Found


class UserRow(TypedDict):
    """A user as the query reads it: the Users stream's columns."""

    user_id: str
    name: str
    level: str


class UserMatch(msgspec.Struct, frozen=True, gc=False):
    """One key's answer in the enricher's terms, whatever carried it. A Struct whose `user` is
    the query's row already, so user-state's answer decodes straight into it: converting each of
    a batch's answers took a fifth of the enricher's main thread. (No cycles: `gc=False`.)"""

    found: Found
    user: UserRow | None = None

    @classmethod
    def of(cls, found: Found, user: User | None) -> UserMatch:
        if user is None:
            return cls(found)
        return cls(found, UserRow(user_id=user.user_id, name=user.name, level=user.level))


class PendingLookup(Protocol):
    def result(self) -> list[UserMatch]:
        """The answers, in key order; raises what the lookup raised."""
        ...


class Answered:
    """A lookup answered already."""

    __slots__ = ("_matches",)

    def __init__(self, matches: list[UserMatch]) -> None:
        self._matches = matches

    def result(self) -> list[UserMatch]:
        return self._matches


NOTHING_ASKED = Answered([])


class UserDirectory(Protocol):
    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        """One answer per (user_id, event time or None for latest), in order; one round trip."""
        ...

    def start(self, keys: Sequence[tuple[str, int | None]]) -> PendingLookup:
        """The same lookup, asked now and answered when `result` is called: the enricher asks
        for a batch read ahead while it finishes the one before. Starting a lookup may first
        wait for the one started before it."""
        ...


def unmatched_reason(found: Found, grace_seconds: float | None = None) -> str:
    """Why a click has no user to join; `grace_seconds` once it waited that long in vain."""
    if grace_seconds is not None:
        return f"user unknown after {grace_seconds:g}s grace"
    if found == Found.ABSENT:
        return "user absent at event time (deleted, or first seen later)"
    return "user unknown"
