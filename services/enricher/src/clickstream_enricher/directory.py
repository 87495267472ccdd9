"""What the enricher needs from user-state, independent of how it is reached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from clickstream_common.contracts import User

Found = Literal["found", "unknown", "absent"]


@dataclass(frozen=True, slots=True)
class UserMatch:
    found: Found
    user: User | None = None


class UserDirectory(Protocol):
    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        """One answer per (user_id, event time or None for latest), in order; one round trip."""
        ...
