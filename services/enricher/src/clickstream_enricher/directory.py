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


class UserDirectory(Protocol):
    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        """One answer per (user_id, event time or None for latest), in order; one round trip."""
        ...
