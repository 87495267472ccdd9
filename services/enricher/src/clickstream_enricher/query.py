"""The enricher's streaming query: SQL in, a projection and a predicate out.

The pipeline's behaviour is the seed's SQL, not code, so a user can change what is emitted without
a release. The query is parsed with sqlglot and compiled once into closures; nothing walks the AST
per row, because the predicate and projection run for every click.

Only the shape a stream-table join can honour is accepted: ``FROM <clicks> [INNER|LEFT] JOIN
<users> ON <clicks>.user_id = <users>.user_id [WHERE ...]``. Everything else is refused at start
with a message naming the construct, so a query never silently means something else.

Decisions:

- ``SELECT *`` expands to the click columns then the user columns without the duplicate
  ``user_id`` (it comes from the click, so it is set even when a LEFT JOIN finds no user);
  ``<stream>.*`` expands to that stream's columns. Two output columns with one name are refused:
  the output row is a JSON object.
- ``BETWEEN`` is supported (``x BETWEEN a AND b`` is ``x >= a AND x <= b``).
- ``FROM Users JOIN Clicks`` is accepted for an INNER join (same rows); for a LEFT join it is
  refused: only clicks produce rows.
- Once a stream has an alias, only the alias qualifies its columns, as in standard SQL.
- Identifiers (streams, aliases, columns) are case-insensitive, quoted or not; string literals and
  string comparisons are case-sensitive.
- Values of different kinds (number, string, boolean) never compare: the result is unknown, as a
  NULL would be, so a bad record cannot raise mid-stream.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

__all__ = [
    "CLICK_COLUMNS",
    "DEFAULT_QUERY",
    "JOIN_KEY",
    "USER_COLUMNS",
    "CompiledQuery",
    "QueryError",
    "StreamNames",
    "compile_query",
]

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

Row: TypeAlias = Mapping[str, object]
Truth: TypeAlias = bool | None
"""SQL three-valued logic: None is UNKNOWN."""
Predicate: TypeAlias = Callable[[Row, Row | None], Truth]
Getter: TypeAlias = Callable[[Row, Row | None], object]
Side: TypeAlias = Literal["click", "user"]

_SCHEMA: Final[dict[Side, tuple[str, ...]]] = {"click": CLICK_COLUMNS, "user": USER_COLUMNS}


class QueryError(ValueError):
    """A query the enricher cannot run; raised at start, never per row."""


@dataclass(frozen=True)
class StreamNames:
    """The names the SQL uses for the streams; config maps them to topics."""

    clicks: str = "Clicks"
    users: str = "Users"
    output: str = "VipActions"


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


# --------------------------------------------------------------------------------------------
# Compile-time model


@dataclass(frozen=True, slots=True)
class _Col:
    side: Side
    name: str


@dataclass(frozen=True, slots=True)
class _Const:
    value: object


_Operand: TypeAlias = _Col | _Const


def _unsupported(what: str, node: exp.Expression | None = None) -> QueryError:
    where = f" (at `{node.sql()}`)" if node is not None else ""
    return QueryError(f"unsupported construct: {what}{where}")


_ARITHMETIC: Final[dict[type[exp.Expression], str]] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
    exp.IntDiv: "DIV",
    exp.Neg: "unary -",
    exp.BitwiseAnd: "&",
    exp.BitwiseOr: "|",
    exp.BitwiseXor: "^",
    exp.BitwiseNot: "~",
    exp.BitwiseLeftShift: "<<",
    exp.BitwiseRightShift: ">>",
}


def _describe(node: exp.Expression) -> str:
    """Name a construct the way a SQL user would recognise it in an error message."""
    if isinstance(node, exp.Window):
        return "window function"
    if isinstance(node, exp.Subquery | exp.Select | exp.Exists):
        return "subquery"
    if isinstance(node, exp.SetOperation):
        return node.key.upper()
    if isinstance(node, exp.Case | exp.If):
        return "CASE"
    if isinstance(node, exp.Cast | exp.TryCast):
        return "CAST"
    if isinstance(node, exp.AggFunc):
        return f"aggregate function {node.sql_name()}"
    if isinstance(node, exp.Anonymous):
        return f"function call {node.name.upper()}"
    if isinstance(node, exp.Func):
        return f"function call {node.sql_name()}"
    for cls, symbol in _ARITHMETIC.items():
        if isinstance(node, cls):
            return f"arithmetic ({symbol})"
    if isinstance(node, exp.DPipe):
        return "string concatenation (||)"
    if isinstance(node, exp.ILike):
        return "ILIKE"
    if isinstance(node, exp.Like):
        return "LIKE"
    if isinstance(node, exp.SimilarTo):
        return "SIMILAR TO"
    if isinstance(node, exp.RegexpLike):
        return "REGEXP"
    if isinstance(node, exp.NullSafeEQ):
        return "IS NOT DISTINCT FROM"
    if isinstance(node, exp.NullSafeNEQ):
        return "IS DISTINCT FROM"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return "query parameter"
    if isinstance(node, exp.Star):
        return "*"
    return node.key.upper()


# Clause names by sqlglot arg name, trailing "_" stripped (sqlglot renamed e.g. from -> from_).
_CLAUSES: Final[dict[str, str]] = {
    "with": "WITH",
    "distinct": "DISTINCT",
    "group": "GROUP BY",
    "having": "HAVING",
    "qualify": "QUALIFY",
    "windows": "WINDOW",
    "order": "ORDER BY",
    "sort": "SORT BY",
    "cluster": "CLUSTER BY",
    "distribute": "DISTRIBUTE BY",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "into": "SELECT INTO",
    "laterals": "LATERAL",
    "pivots": "PIVOT",
    "connect": "CONNECT BY",
    "prewhere": "PREWHERE",
    "match": "MATCH_RECOGNIZE",
    "locks": "FOR UPDATE",
    "sample": "TABLESAMPLE",
    "kind": "SELECT AS",
}
_SELECT_ALLOWED: Final = frozenset({"expressions", "from", "joins", "where"})


def _refuse_extra_args(node: exp.Expression, allowed: frozenset[str]) -> None:
    """Refuse any clause we do not evaluate, so it cannot be silently ignored."""
    present = [k.rstrip("_") for k, v in node.args.items() if v and k.rstrip("_") not in allowed]
    if not present:
        return
    ordered = [k for k in _CLAUSES if k in present] + [k for k in present if k not in _CLAUSES]
    raise _unsupported(_CLAUSES.get(ordered[0], ordered[0].upper().replace("_", " ")))


def _strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


# --------------------------------------------------------------------------------------------
# Name resolution


class _Scope:
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

    def resolve(self, col: exp.Column) -> _Col:
        if col.args.get("db") or col.args.get("catalog"):
            raise _unsupported("multi-part column name", col)
        if isinstance(col.this, exp.Star):
            raise _unsupported("* outside the SELECT list", col)
        name = col.name.lower()
        qual = col.table
        if qual:
            side = self.side_of(qual, col)
            if name not in _SCHEMA[side]:
                raise QueryError(
                    f"unknown column {col.sql()}: {self.label[side]} has "
                    + ", ".join(_SCHEMA[side])
                )
            return _Col(side, name)
        in_click, in_user = name in CLICK_COLUMNS, name in USER_COLUMNS
        if in_click and in_user:
            raise QueryError(
                f"ambiguous column {col.name}: write {self.label['click']}.{name} "
                f"or {self.label['user']}.{name}"
            )
        if not (in_click or in_user):
            raise QueryError(f"unknown column {col.name}")
        return _Col("click" if in_click else "user", name)

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

    def expand_star(self, side: Side | None) -> list[tuple[str, _Col]]:
        if side is not None:
            return [(c, _Col(side, c)) for c in _SCHEMA[side]]
        return [(c, _Col("click", c)) for c in CLICK_COLUMNS] + [
            (c, _Col("user", c)) for c in USER_COLUMNS if c != JOIN_KEY
        ]


# --------------------------------------------------------------------------------------------
# Statement structure


def _parse_one(sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(sql) if s is not None]
    except SqlglotError as e:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # sqlglot underlines with ANSI codes
        raise QueryError(f"cannot parse query: {message}") from e
    if not statements:
        raise QueryError("empty query")
    if len(statements) > 1:
        raise _unsupported("multiple statements")
    stmt = statements[0]
    assert isinstance(stmt, exp.Expression)
    return stmt


def _split_statement(stmt: exp.Expression, streams: StreamNames) -> tuple[str, exp.Select]:
    """Return (target, select) for INSERT INTO ... SELECT or a bare SELECT."""
    if isinstance(stmt, exp.Insert):
        body = stmt.expression
        target_node = stmt.this
        if isinstance(target_node, exp.Schema):
            raise _unsupported("INSERT column list", target_node)
        if not isinstance(target_node, exp.Table):
            raise _unsupported(f"INSERT INTO {_describe(target_node)}", target_node)
        if target_node.args.get("db") or target_node.args.get("catalog"):
            raise _unsupported("qualified stream name", target_node)
        _refuse_extra_args(stmt, frozenset({"this", "expression"}))
        target = target_node.name
        if target.lower() in (streams.clicks.lower(), streams.users.lower()):
            raise QueryError(f"INSERT INTO {target}: the target cannot be an input stream")
    elif isinstance(stmt, exp.Query):
        body = stmt
        target = streams.output
    elif isinstance(stmt, exp.Command):
        raise _unsupported(f"{str(stmt.this).upper()} statement")
    elif isinstance(stmt, exp.Condition | exp.Alias | exp.Identifier):
        raise QueryError(f"not a SELECT or INSERT INTO ... SELECT statement: {stmt.sql()}")
    else:
        raise _unsupported(f"{stmt.key.upper()} statement")
    if isinstance(body, exp.Values):
        raise _unsupported("VALUES")
    if not isinstance(body, exp.Select):
        raise _unsupported(_describe(body))
    return target, body


def _stream_of(table: exp.Expression, streams: StreamNames) -> tuple[Side, str, str | None]:
    """Return (side, stream name as written, alias) for a FROM or JOIN item."""
    if not isinstance(table, exp.Table):
        raise _unsupported(_describe(table), table)
    if table.args.get("db") or table.args.get("catalog"):
        raise _unsupported("qualified stream name", table)
    alias_node = table.args.get("alias")
    if alias_node is not None and alias_node.args.get("columns"):
        raise _unsupported("column aliases on a stream", table)
    _refuse_extra_args(table, frozenset({"this", "alias", "db", "catalog"}))
    if not isinstance(table.this, exp.Identifier):
        raise _unsupported(_describe(table.this), table)
    name = table.name
    if name.lower() == streams.clicks.lower():
        side: Side = "click"
    elif name.lower() == streams.users.lower():
        side = "user"
    else:
        raise QueryError(f"unknown stream {name!r} (expected {streams.clicks} or {streams.users})")
    return side, name, table.alias or None


def _join_kind(join: exp.Join) -> Literal["inner", "left"]:
    method = join.method
    if method:
        raise _unsupported(f"{method} JOIN")
    if join.args.get("using"):
        raise _unsupported("JOIN ... USING (write ON a.user_id = b.user_id)")
    side, kind = join.side, join.kind
    if kind == "CROSS":
        raise _unsupported("CROSS JOIN")
    if side in ("RIGHT", "FULL"):
        raise _unsupported(f"{side} JOIN")
    if kind and kind not in ("INNER", "OUTER"):
        raise _unsupported(f"{kind} JOIN")
    if kind == "OUTER" and side != "LEFT":
        raise _unsupported("OUTER JOIN without LEFT")
    if side and side != "LEFT":
        raise _unsupported(f"{side} JOIN")
    _refuse_extra_args(join, frozenset({"this", "on", "side", "kind"}))
    if join.args.get("on") is None:
        if not side and not kind:  # sqlglot parses `a JOIN b` and `a, b` alike
            raise _unsupported("CROSS JOIN (JOIN without ON, or a comma-separated FROM list)")
        raise _unsupported(f"{side or kind} JOIN without ON")
    return "left" if side == "LEFT" else "inner"


def _check_join_condition(on: exp.Expression, scope: _Scope) -> None:
    cond = _strip_parens(on)
    if isinstance(cond, exp.EQ):
        left, right = _strip_parens(cond.this), _strip_parens(cond.expression)
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            cols = {scope.resolve(left), scope.resolve(right)}
            if cols == {_Col("click", JOIN_KEY), _Col("user", JOIN_KEY)}:
                return
    expected = f"{scope.label['click']}.{JOIN_KEY} = {scope.label['user']}.{JOIN_KEY}"
    raise _unsupported(f"join condition other than {expected}", on)


# --------------------------------------------------------------------------------------------
# Operands and values


_KIND_BY_TYPE: Final[dict[type, str]] = {str: "str", int: "num", float: "num", bool: "bool"}
_TYPES_BY_KIND: Final[dict[str, frozenset[type]]] = {
    "str": frozenset({str}),
    "num": frozenset({int, float}),
    "bool": frozenset({bool}),
}


def _kind(value: object) -> str | None:
    """Comparable kind of a value; None for NULL or anything that never compares."""
    kind = _KIND_BY_TYPE.get(value.__class__)
    if kind is not None or value is None:
        return kind
    # Subclasses (an IntEnum, a str subclass) are rare: classify them off the fast path.
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


def _literal_value(node: exp.Literal) -> object:
    text = str(node.this)
    if node.is_string:
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise _unsupported("numeric literal", node) from None


def _operand(node: exp.Expression, scope: _Scope) -> _Operand:
    node = _strip_parens(node)
    if isinstance(node, exp.Column):
        return scope.resolve(node)
    if isinstance(node, exp.Literal):
        return _Const(_literal_value(node))
    if isinstance(node, exp.Boolean):
        return _Const(bool(node.this))
    if isinstance(node, exp.Null):
        return _Const(None)
    if isinstance(node, exp.Neg):
        inner = _operand(node.this, scope)
        if isinstance(inner, _Const) and _kind(inner.value) == "num":
            value = inner.value
            assert isinstance(value, int | float)
            return _Const(-value)
        raise _unsupported("arithmetic (unary -)", node)
    if isinstance(node, exp.Predicate | exp.Connector | exp.Not):
        raise _unsupported("condition used as a value", node)
    raise _unsupported(_describe(node), node)


def _getter(col: _Col) -> Getter:
    name = col.name
    if col.side == "click":
        return lambda click, user: click.get(name)
    return lambda click, user: None if user is None else user.get(name)


# --------------------------------------------------------------------------------------------
# Predicates (three-valued: True, False, None = unknown)

_OPS: Final[dict[type[exp.Expression], Callable[[Any, Any], Any]]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}
_FLIPPED: Final[dict[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = {
    operator.eq: operator.eq,
    operator.ne: operator.ne,
    operator.lt: operator.gt,
    operator.le: operator.ge,
    operator.gt: operator.lt,
    operator.ge: operator.le,
}


def _compare_values(op: Callable[[Any, Any], Any], a: object, b: object) -> Truth:
    kind = _kind(a)
    if kind is None or kind != _kind(b):
        return None
    return bool(op(a, b))


def _constant(value: Truth) -> Predicate:
    return lambda click, user: value


def _compare(op: Callable[[Any, Any], Any], left: _Operand, right: _Operand) -> Predicate:
    if isinstance(left, _Const) and isinstance(right, _Const):
        return _constant(_compare_values(op, left.value, right.value))
    if isinstance(left, _Const):
        left, right, op = right, left, _FLIPPED[op]
    assert isinstance(left, _Col)
    if isinstance(right, _Col):
        get_a, get_b = _getter(left), _getter(right)

        def col_col(click: Row, user: Row | None) -> Truth:
            return _compare_values(op, get_a(click, user), get_b(click, user))

        return col_col
    return _compare_literal(op, left, right.value)


def _compare_literal(op: Callable[[Any, Any], Any], col: _Col, lit: object) -> Predicate:
    """The hot case (column op literal): one dict lookup, one type check, one comparison."""
    lit_kind = _kind(lit)
    if lit_kind is None:  # comparing with NULL is never TRUE or FALSE
        return _constant(None)
    ok = _TYPES_BY_KIND[lit_kind]
    name = col.name

    def slow(value: object) -> Truth:
        if value is None or _kind(value) != lit_kind:
            return None
        return bool(op(value, lit))

    if col.side == "click":

        def click_lit(click: Row, user: Row | None) -> Truth:
            value = click.get(name)
            if value.__class__ in ok:
                return op(value, lit)  # type: ignore[no-any-return]
            return slow(value)

        return click_lit

    def user_lit(click: Row, user: Row | None) -> Truth:
        if user is None:
            return None
        value = user.get(name)
        if value.__class__ in ok:
            return op(value, lit)  # type: ignore[no-any-return]
        return slow(value)

    return user_lit


def _in_list(operand: _Operand, items: list[_Operand], node: exp.Expression) -> Predicate:
    """x IN (a, b, ...) is TRUE on a match, else UNKNOWN if any item could be NULL or
    incomparable with x, else FALSE."""
    values = []
    for item in items:
        if not isinstance(item, _Const):
            raise _unsupported("non-literal in IN list", node)
        values.append(item.value)
    by_kind: dict[str, set[object]] = {}
    has_null = False
    for value in values:
        kind = _kind(value)
        if kind is None:
            has_null = True
        else:
            by_kind.setdefault(kind, set()).add(value)
    # per kind of x: (the items it can equal, the answer when it equals none of them)
    table: dict[str, tuple[frozenset[object], Truth]] = {}
    for kind in _TYPES_BY_KIND:
        others = has_null or any(k != kind for k in by_kind)
        table[kind] = (frozenset(by_kind.get(kind, ())), None if others else False)

    def test(value: object) -> Truth:
        kind = _kind(value)
        if kind is None:
            return None
        members, miss = table[kind]
        return True if value in members else miss

    if isinstance(operand, _Const):
        return _constant(test(operand.value))
    get = _getter(operand)
    return lambda click, user: test(get(click, user))


def _is_null(operand: _Operand) -> Predicate:
    if isinstance(operand, _Const):
        return _constant(operand.value is None)
    name = operand.name
    if operand.side == "click":
        return lambda click, user: click.get(name) is None
    return lambda click, user: user is None or user.get(name) is None


def _and(left: Predicate, right: Predicate) -> Predicate:
    def both(click: Row, user: Row | None) -> Truth:
        a = left(click, user)
        if a is True:
            return right(click, user)
        if a is False:
            return False
        return False if right(click, user) is False else None

    return both


def _or(left: Predicate, right: Predicate) -> Predicate:
    def either(click: Row, user: Row | None) -> Truth:
        a = left(click, user)
        if a is False:
            return right(click, user)
        if a is True:
            return True
        return True if right(click, user) is True else None

    return either


def _not(inner: Predicate) -> Predicate:
    def negated(click: Row, user: Row | None) -> Truth:
        a = inner(click, user)
        return None if a is None else not a

    return negated


def _predicate(node: exp.Expression, scope: _Scope) -> Predicate:
    node = _strip_parens(node)
    if isinstance(node, exp.And):
        return _and(_predicate(node.this, scope), _predicate(node.expression, scope))
    if isinstance(node, exp.Or):
        return _or(_predicate(node.this, scope), _predicate(node.expression, scope))
    if isinstance(node, exp.Not):
        return _not(_predicate(node.this, scope))
    op = _OPS.get(type(node))
    if op is not None:
        return _compare(op, _operand(node.this, scope), _operand(node.expression, scope))
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            raise _unsupported("subquery", node)
        _refuse_extra_args(node, frozenset({"this", "expressions"}))
        if not node.expressions:
            raise _unsupported("empty IN list", node)
        items = [_operand(e, scope) for e in node.expressions]
        return _in_list(_operand(node.this, scope), items, node)
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise _unsupported(f"IS {node.expression.sql()}", node)
        return _is_null(_operand(node.this, scope))
    if isinstance(node, exp.Between):
        if node.args.get("symmetric"):
            raise _unsupported("BETWEEN SYMMETRIC")
        subject = _operand(node.this, scope)
        low = _compare(operator.ge, subject, _operand(node.args["low"], scope))
        high = _compare(operator.le, subject, _operand(node.args["high"], scope))
        return _and(low, high)
    if isinstance(node, exp.Boolean):
        return _constant(bool(node.this))
    if isinstance(node, exp.Null):
        return _constant(None)
    if isinstance(node, exp.Column):
        raise QueryError(f"column {node.sql()} used as a condition: compare it with a value")
    raise _unsupported(_describe(node), node)


# --------------------------------------------------------------------------------------------
# Projection and assembly


def _projection(select: exp.Select, scope: _Scope) -> list[tuple[str, _Col]]:
    out: list[tuple[str, _Col]] = []
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
            inner = _strip_parens(item.this)
            if not isinstance(inner, exp.Column) or isinstance(inner.this, exp.Star):
                raise _unsupported(_select_item(inner), item)
            out.append((item.alias, scope.resolve(inner)))
        else:
            raise _unsupported(_select_item(item), item)
    seen: set[str] = set()
    for name, _ in out:
        if name in seen:
            raise QueryError(f"duplicate output column {name!r}: give one of them an alias")
        seen.add(name)
    return out


def _refuse_star_modifiers(star: exp.Star) -> None:
    if any(star.args.values()):
        raise _unsupported("* with EXCEPT/REPLACE/RENAME", star)


def _select_item(node: exp.Expression) -> str:
    if isinstance(node, exp.Literal | exp.Boolean | exp.Null):
        return "literal in the SELECT list"
    if isinstance(node, exp.Predicate | exp.Connector | exp.Not):
        return "condition in the SELECT list"
    return _describe(node)


def _row_functions(
    join: Literal["inner", "left"],
    columns: list[tuple[str, _Col]],
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


# Deepest expression tree accepted. The compiled predicate nests one closure per level, so this
# also bounds the stack a row's evaluation needs; real queries are a dozen levels deep.
MAX_QUERY_DEPTH: Final[int] = 100


def _check_depth(root: exp.Expression) -> None:
    """Refuse a tree deeper than MAX_QUERY_DEPTH, walking it without recursion."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_QUERY_DEPTH:
            raise _unsupported(f"expression nested deeper than {MAX_QUERY_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def compile_query(sql: str, streams: StreamNames = StreamNames()) -> CompiledQuery:
    """Parse and validate ``sql`` once; raise QueryError naming whatever cannot be run."""
    try:
        return _compile(sql, streams)
    except RecursionError:
        # sqlglot's recursive-descent parser gives out on deep nesting (some 50 parentheses).
        raise _unsupported(f"expression nested deeper than {MAX_QUERY_DEPTH} levels") from None


def _compile(sql: str, streams: StreamNames) -> CompiledQuery:
    if streams.clicks.lower() == streams.users.lower():
        raise QueryError(
            f"the clicks and users streams need different names, both {streams.clicks!r}"
        )
    statement = _parse_one(sql)
    _check_depth(statement)
    target, select = _split_statement(statement, streams)
    _refuse_extra_args(select, _SELECT_ALLOWED)

    from_clause = select.args.get("from_") or select.args.get("from")
    if from_clause is None:
        raise QueryError(f"missing FROM {streams.clicks} JOIN {streams.users} ON ...")
    first, first_name, first_alias = _stream_of(from_clause.this, streams)
    joins: list[exp.Join] = select.args.get("joins") or []
    if not joins:
        raise QueryError(
            f"missing JOIN: expected FROM {streams.clicks} JOIN {streams.users} "
            f"ON {streams.clicks}.{JOIN_KEY} = {streams.users}.{JOIN_KEY}"
        )
    if len(joins) > 1:
        raise _unsupported("more than one JOIN")
    join_node = joins[0]
    join = _join_kind(join_node)
    second, second_name, second_alias = _stream_of(join_node.this, streams)
    if first == second:
        raise _unsupported(f"joining the {first}s stream {first_name} to itself")
    if first == "user" and join == "left":
        raise _unsupported(
            f"{first_name} LEFT JOIN {second_name}: the left side must be the "
            f"{streams.clicks} stream, since only clicks produce rows"
        )

    names = {first: first_name, second: second_name}
    aliases = {first: first_alias, second: second_alias}
    sides: tuple[Side, Side] = ("click", "user")
    scope = _Scope(
        qualifiers={side: aliases[side] or names[side] for side in sides},
        aliased={side: names[side] for side in sides if aliases[side]},
    )
    _check_join_condition(join_node.args["on"], scope)

    columns = _projection(select, scope)
    where_node = select.args.get("where")
    where = _predicate(where_node.this, scope) if where_node is not None else None
    project, matches, evaluate = _row_functions(join, columns, where)
    return CompiledQuery(
        target=target,
        join=join,
        columns=tuple(name for name, _ in columns),
        _project=project,
        _matches=matches,
        _evaluate=evaluate,
    )
