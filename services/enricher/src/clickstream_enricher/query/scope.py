"""Name resolution: which qualifier (stream name or alias) names which side of the join, and
which side an unqualified column belongs to, decided once at compile time."""

from __future__ import annotations

from typing import Protocol

from sqlglot import exp

from clickstream_enricher.query.model import (
    CLICK_COLUMNS,
    JOIN_KEY,
    SCHEMA,
    USER_COLUMNS,
    Col,
    QueryError,
    Side,
)
from clickstream_enricher.query.refusals import unsupported


class Resolver(Protocol):
    """What compiling an expression needs: a column reference turned into a row's column."""

    def resolve(self, col: exp.Column) -> Col: ...


class Scope:
    """Which qualifiers name which stream, to resolve column references at compile time."""

    def __init__(self, qualifiers: dict[Side, str], aliased: dict[Side, str]) -> None:
        # qualifiers: how each side is referenced in SQL (alias or stream name).
        # aliased: stream name of each side that has an alias (hidden by it).
        self.label = qualifiers
        self.quals: dict[str, Side] = {}
        for side, q in qualifiers.items():
            if q.lower() in self.quals:
                raise QueryError(f"duplicate stream alias {q!r}")
            self.quals[q.lower()] = side
        self.hidden = {name.lower(): qualifiers[side] for side, name in aliased.items()}

    def resolve(self, col: exp.Column) -> Col:
        if col.args.get("db") or col.args.get("catalog"):
            raise unsupported("multi-part column name", col)
        if isinstance(col.this, exp.Star):
            raise unsupported("* outside the SELECT list", col)
        name = col.name.lower()
        qual = col.table
        if qual:
            side = self.side_of(qual, col)
            if name not in SCHEMA[side]:
                raise QueryError(
                    f"unknown column {col.sql()}: {self.label[side]} has " + ", ".join(SCHEMA[side])
                )
            return Col(side, name)
        in_click, in_user = name in CLICK_COLUMNS, name in USER_COLUMNS
        if in_click and in_user:
            raise QueryError(
                f"ambiguous column {col.name}: write {self.label['click']}.{name} "
                f"or {self.label['user']}.{name}"
            )
        if not (in_click or in_user):
            raise QueryError(f"unknown column {col.name}")
        return Col("click" if in_click else "user", name)

    def side_of(self, qual: str, col: exp.Column) -> Side:
        side = self.quals.get(qual.lower())
        if side is not None:
            return side
        alias = self.hidden.get(qual.lower())
        if alias is not None:
            hint = f"{qual} is aliased as {alias}; write {alias}.{col.name}"
        else:
            hint = "expected " + " or ".join(self.label.values())
        raise QueryError(f"unknown stream or alias {qual!r} in {col.sql()} ({hint})")

    def expand_star(self, side: Side | None) -> list[tuple[str, Col]]:
        if side is not None:
            return [(c, Col(side, c)) for c in SCHEMA[side]]
        return [(c, Col("click", c)) for c in CLICK_COLUMNS] + [
            (c, Col("user", c)) for c in USER_COLUMNS if c != JOIN_KEY
        ]


class StreamScope:
    """One stream read without a join (for example the VipActions an earlier query wrote): its
    columns are whatever its records carry, so any name resolves, and a column a record lacks
    is NULL. Its rows are passed as the click side."""

    def __init__(self, name: str, alias: str | None) -> None:
        self.label = alias or name
        self.hidden = name if alias else None

    def resolve(self, col: exp.Column) -> Col:
        if col.args.get("db") or col.args.get("catalog"):
            raise unsupported("multi-part column name", col)
        if isinstance(col.this, exp.Star):
            raise unsupported("* outside the SELECT list", col)
        qual = col.table
        if qual and qual.lower() != self.label.lower():
            if self.hidden is not None and qual.lower() == self.hidden.lower():
                hint = f"{qual} is aliased as {self.label}; write {self.label}.{col.name}"
            else:
                hint = f"expected {self.label}"
            raise QueryError(f"unknown stream or alias {qual!r} in {col.sql()} ({hint})")
        return Col("click", col.name.lower())
