"""The SELECT list, and the per-row functions built from it and the WHERE predicate: the output
dict is the only allocation per row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sqlglot import exp

from clickstream_enricher.query.model import Col, Predicate, QueryError, Row
from clickstream_enricher.query.refusals import describe, strip_parens, unsupported
from clickstream_enricher.query.scope import Scope


def projection(select: exp.Select, scope: Scope) -> list[tuple[str, Col]]:
    out: list[tuple[str, Col]] = []
    for item in select.expressions:
        if isinstance(item, exp.Star):
            _refuse_star_modifiers(item)
            out.extend(scope.expand_star(None))
        elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            _refuse_star_modifiers(item.this)
            out.extend(scope.expand_star(scope.side_of(item.table, item)))
        elif isinstance(item, exp.Column):
            col = scope.resolve(item)
            out.append((col.name, col))
        elif isinstance(item, exp.Alias):
            inner = strip_parens(item.this)
            if not isinstance(inner, exp.Column) or isinstance(inner.this, exp.Star):
                raise unsupported(_select_item(inner), item)
            out.append((item.alias, scope.resolve(inner)))
        else:
            raise unsupported(_select_item(item), item)
    seen: set[str] = set()
    for name, _ in out:
        if name in seen:
            raise QueryError(f"duplicate output column {name!r}: give one of them an alias")
        seen.add(name)
    return out


def _refuse_star_modifiers(star: exp.Star) -> None:
    if any(star.args.values()):
        raise unsupported("* with EXCEPT/REPLACE/RENAME", star)


def _select_item(node: exp.Expression) -> str:
    if isinstance(node, exp.Literal | exp.Boolean | exp.Null):
        return "literal in the SELECT list"
    if isinstance(node, exp.Predicate | exp.Connector | exp.Not):
        return "condition in the SELECT list"
    return describe(node)


def row_functions(
    join: Literal["inner", "left"],
    columns: list[tuple[str, Col]],
    where: Predicate | None,
) -> tuple[
    Callable[[Row, Row | None], dict[str, object]],
    Callable[[Row, Row | None], bool],
    Callable[[Row, Row | None], dict[str, object] | None],
]:
    """Build project/matches/evaluate; the output dict is the only per-row allocation."""
    template: dict[str, object] = dict.fromkeys(name for name, _ in columns)
    from_click = tuple((out, c.name) for out, c in columns if c.side == "click")
    from_user = tuple((out, c.name) for out, c in columns if c.side == "user")

    def project(click: Row, user: Row | None) -> dict[str, object]:
        row = template.copy()  # keeps the SELECT order; user columns stay None without a user
        for out, name in from_click:
            row[out] = click.get(name)
        if user is not None:
            for out, name in from_user:
                row[out] = user.get(name)
        return row

    if join == "inner":
        if where is None:

            def matches(click: Row, user: Row | None) -> bool:
                return user is not None

        else:

            def matches(click: Row, user: Row | None) -> bool:
                return user is not None and where(click, user) is True

    elif where is None:

        def matches(click: Row, user: Row | None) -> bool:
            return True

    else:

        def matches(click: Row, user: Row | None) -> bool:
            return where(click, user) is True

    if join == "inner" and where is not None:
        # The common case, seed included: fused so a dropped click costs one predicate call.
        def evaluate(click: Row, user: Row | None) -> dict[str, object] | None:
            if user is None or where(click, user) is not True:
                return None
            row = template.copy()
            for out, name in from_click:
                row[out] = click.get(name)
            for out, name in from_user:
                row[out] = user.get(name)
            return row

    else:

        def evaluate(click: Row, user: Row | None) -> dict[str, object] | None:
            return project(click, user) if matches(click, user) else None

    return project, matches, evaluate
