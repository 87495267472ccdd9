"""What the enricher needs from user-state, independent of how it is reached."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

from clickstream_common.contracts import User

Found = Literal["found", "unknown", "absent"]


class UserMatch(NamedTuple):
    found: Found
    user: User | None = None


class UserDirectory(Protocol):
    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        """One answer per (user_id, event time or None for latest), in order; one round trip."""
        ...
