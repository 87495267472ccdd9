"""The statement's structure: one INSERT INTO ... SELECT (or bare SELECT) over the clicks stream
joined to the users stream on user_id, which is the only shape a stream-table join can honour."""

from __future__ import annotations

import re
from typing import ClassVar, Final, Literal

import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from clickstream_enricher.query.model import JOIN_KEY, Col, QueryError, Side, StreamNames
from clickstream_enricher.query.refusals import (
    describe,
    refuse_extra_args,
    strip_parens,
    unsupported,
)
from clickstream_enricher.query.scope import Scope


class _FlinkGroupWindows(Dialect):
    """sqlglot's default dialect, except that SESSION is a plain name, so Flink's group window
    `SESSION(event_time, INTERVAL '30' MINUTE)` parses as the function call it is."""

    class Tokenizer(tokens.Tokenizer):
        KEYWORDS: ClassVar = {k: v for k, v in tokens.Tokenizer.KEYWORDS.items() if k != "SESSION"}


def parse_one(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql, read=_FlinkGroupWindows) if s is not None]
    except SqlglotError as e:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # sqlglot underlines with ANSI codes
        raise QueryError(f"cannot parse query: {message}") from e
    if not statements:
        raise QueryError("empty query")
    if len(statements) > 1:
        raise unsupported("multiple statements")
    stmt = statements[0]
    assert isinstance(stmt, exp.Expression)
    return stmt


def split_statement(stmt: exp.Expression, streams: StreamNames) -> tuple[str, exp.Select]:
    """Return (target, select) for INSERT INTO ... SELECT or a bare SELECT."""
    if isinstance(stmt, exp.Insert):
        body = stmt.expression
        target_node = stmt.this
        if isinstance(target_node, exp.Schema):
            raise unsupported("INSERT column list", target_node)
        if not isinstance(target_node, exp.Table):
            raise unsupported(f"INSERT INTO {describe(target_node)}", target_node)
        if target_node.args.get("db") or target_node.args.get("catalog"):
            raise unsupported("qualified stream name", target_node)
        refuse_extra_args(stmt, frozenset({"this", "expression"}))
        target = target_node.name
        if target.lower() in (streams.clicks.lower(), streams.users.lower()):
            raise QueryError(f"INSERT INTO {target}: the target cannot be an input stream")
    elif isinstance(stmt, exp.Query):
        body = stmt
        target = streams.output
    elif isinstance(stmt, exp.Command):
        raise unsupported(f"{str(stmt.this).upper()} statement")
    elif isinstance(stmt, exp.Condition | exp.Alias | exp.Identifier):
        raise QueryError(f"not a SELECT or INSERT INTO ... SELECT statement: {stmt.sql()}")
    else:
        raise unsupported(f"{stmt.key.upper()} statement")
    if isinstance(body, exp.Values):
        raise unsupported("VALUES")
    if not isinstance(body, exp.Select):
        raise unsupported(describe(body))
    return target, body


def stream_of(table: exp.Expression, streams: StreamNames) -> tuple[Side, str, str | None]:
    """Return (side, stream name as written, alias) for a FROM or JOIN item."""
    if not isinstance(table, exp.Table):
        raise unsupported(describe(table), table)
    if table.args.get("db") or table.args.get("catalog"):
        raise unsupported("qualified stream name", table)
    alias_node = table.args.get("alias")
    if alias_node is not None and alias_node.args.get("columns"):
        raise unsupported("column aliases on a stream", table)
    refuse_extra_args(table, frozenset({"this", "alias", "db", "catalog"}))
    if not isinstance(table.this, exp.Identifier):
        raise unsupported(describe(table.this), table)
    name = table.name
    if name.lower() == streams.clicks.lower():
        side: Side = "click"
    elif name.lower() == streams.users.lower():
        side = "user"
    else:
        raise QueryError(f"unknown stream {name!r} (expected {streams.clicks} or {streams.users})")
    return side, name, table.alias or None


def join_kind(join: exp.Join) -> Literal["inner", "left"]:
    method = join.method
    if method:
        raise unsupported(f"{method} JOIN")
    if join.args.get("using"):
        raise unsupported("JOIN ... USING (write ON a.user_id = b.user_id)")
    side, kind = join.side, join.kind
    if kind == "CROSS":
        raise unsupported("CROSS JOIN")
    if side in ("RIGHT", "FULL"):
        raise unsupported(f"{side} JOIN")
    if kind and kind not in ("INNER", "OUTER"):
        raise unsupported(f"{kind} JOIN")
    if kind == "OUTER" and side != "LEFT":
        raise unsupported("OUTER JOIN without LEFT")
    if side and side != "LEFT":
        raise unsupported(f"{side} JOIN")
    refuse_extra_args(join, frozenset({"this", "on", "side", "kind"}))
    if join.args.get("on") is None:
        if not side and not kind:  # sqlglot parses `a JOIN b` and `a, b` alike
            raise unsupported("CROSS JOIN (JOIN without ON, or a comma-separated FROM list)")
        raise unsupported(f"{side or kind} JOIN without ON")
    return "left" if side == "LEFT" else "inner"


def check_join_condition(on: exp.Expression, scope: Scope) -> None:
    cond = strip_parens(on)
    if isinstance(cond, exp.EQ):
        left, right = strip_parens(cond.this), strip_parens(cond.expression)
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            cols = {scope.resolve(left), scope.resolve(right)}
            if cols == {Col("click", JOIN_KEY), Col("user", JOIN_KEY)}:
                return
    expected = f"{scope.label['click']}.{JOIN_KEY} = {scope.label['user']}.{JOIN_KEY}"
    raise unsupported(f"join condition other than {expected}", on)


# Deepest expression tree accepted. The compiled predicate nests one closure per level, so this
# also bounds the stack a row's evaluation needs; real queries are a dozen levels deep.
MAX_QUERY_DEPTH: Final[int] = 100


def check_depth(root: exp.Expression) -> None:
    """Refuse a tree deeper than MAX_QUERY_DEPTH, walking it without recursion."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_QUERY_DEPTH:
            raise unsupported(f"expression nested deeper than {MAX_QUERY_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node.iter_expressions())
