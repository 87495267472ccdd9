"""What the enricher needs from user-state, independent of how it is reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from clickstream_common.contracts import User
from clickstream_common.lookup import Found


class UserMatch(NamedTuple):
    """One key's answer in the enricher's terms (`contracts.User`), whatever carried it."""

    found: Found
    user: User | None = None


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
