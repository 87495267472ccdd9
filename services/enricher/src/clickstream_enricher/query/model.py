"""What a compiled query is, and the vocabulary the compiler's parts share: the streams' columns,
row and predicate types, and the compile-time operands (a column of one side, or a constant)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias

from clickstream_enricher.rows import Getter, Predicate, Row, Truth

DEFAULT_QUERY: Final[str] = """INSERT INTO VipActions
     SELECT
        Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
     FROM
        Clicks
     INNER JOIN
        Users ON Clicks.user_id = Users.user_id
     WHERE
        Users.level = 'PLATINUM'"""

CLICK_COLUMNS: Final[tuple[str, ...]] = (
    "user_id",
    "page",
    "action",
    "device",
    "agent",
    "event_time",
)
USER_COLUMNS: Final[tuple[str, ...]] = ("user_id", "name", "level")
JOIN_KEY: Final[str] = "user_id"

__all__ = ["Getter", "Predicate", "Row", "Truth"]  # the row vocabulary, for the compiler's parts

Side: TypeAlias = Literal["click", "user"]

SCHEMA: Final[dict[Side, tuple[str, ...]]] = {"click": CLICK_COLUMNS, "user": USER_COLUMNS}


class QueryError(ValueError):
    """A query the enricher cannot run; raised at start, never per row."""


@dataclass(frozen=True)
class StreamNames:
    """The names the SQL uses for the streams; config maps them to topics."""

    clicks: str = "Clicks"
    users: str = "Users"
    output: str = "VipActions"


DEFAULT_STREAMS: Final = StreamNames()


@dataclass(frozen=True, eq=False)
class CompiledQuery:
    """A query ready to run against one (click, user) pair at a time.

    ``user`` is the user the caller looked up by the click's user_id (None if there is none); the
    join key equality is therefore not re-checked per row. Equality is identity: two queries with
    the same columns may still filter differently.
    """

    target: str
    join: Literal["inner", "left"]
    columns: tuple[str, ...]
    _project: Callable[[Row, Row | None], dict[str, object]] = field(repr=False)
    _matches: Callable[[Row, Row | None], bool] = field(repr=False)
    _evaluate: Callable[[Row, Row | None], dict[str, object] | None] = field(repr=False)

    def project(self, click: Row, user: Row | None) -> dict[str, object]:
        """The output row, whether or not the row would be emitted; missing user -> NULLs."""
        return self._project(click, user)

    def matches(self, click: Row, user: Row | None) -> bool:
        """Whether the join and the WHERE clause keep this row (WHERE keeps only TRUE)."""
        return self._matches(click, user)

    def evaluate(self, click: Row, user: Row | None) -> dict[str, object] | None:
        """The output row if emitted, else None: one call per click on the hot path."""
        return self._evaluate(click, user)


@dataclass(frozen=True, slots=True)
class Col:
    side: Side
    name: str


@dataclass(frozen=True, slots=True)
class Const:
    value: object


Operand: TypeAlias = Col | Const
