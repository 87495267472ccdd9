"""WHERE compiled into closures over (click, user), with SQL's three-valued logic (True, False,
None = unknown). Values of different kinds never compare (unknown, as a NULL would be), so a bad
record cannot raise mid-stream; the closures run once per click, so the hot case (column op
literal) is one dict lookup, one type check and one comparison."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from sqlglot import exp

from clickstream_enricher.query.model import (
    Col,
    Const,
    Getter,
    Operand,
    Predicate,
    QueryError,
    Row,
    Truth,
)
from clickstream_enricher.query.refusals import (
    describe,
    refuse_extra_args,
    strip_parens,
    unsupported,
)
from clickstream_enricher.query.scope import Resolver

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
        raise unsupported("numeric literal", node) from None


def operand(node: exp.Expression, scope: Resolver) -> Operand:
    node = strip_parens(node)
    if isinstance(node, exp.Column):
        return scope.resolve(node)
    if isinstance(node, exp.Literal):
        return Const(_literal_value(node))
    if isinstance(node, exp.Boolean):
        return Const(bool(node.this))
    if isinstance(node, exp.Null):
        return Const(None)
    if isinstance(node, exp.Neg):
        inner = operand(node.this, scope)
        if isinstance(inner, Const) and _kind(inner.value) == "num":
            value = inner.value
            assert isinstance(value, int | float)
            return Const(-value)
        raise unsupported("arithmetic (unary -)", node)
    if isinstance(node, exp.Predicate | exp.Connector | exp.Not):
        raise unsupported("condition used as a value", node)
    raise unsupported(describe(node), node)


def getter(col: Col) -> Getter:
    name = col.name
    if col.side == "click":
        return lambda click, user: click.get(name)
    return lambda click, user: None if user is None else user.get(name)


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


def _compare(op: Callable[[Any, Any], Any], left: Operand, right: Operand) -> Predicate:
    if isinstance(left, Const) and isinstance(right, Const):
        return _constant(_compare_values(op, left.value, right.value))
    if isinstance(left, Const):
        left, right, op = right, left, _FLIPPED[op]
    assert isinstance(left, Col)
    if isinstance(right, Col):
        get_a, get_b = getter(left), getter(right)

        def col_col(click: Row, user: Row | None) -> Truth:
            return _compare_values(op, get_a(click, user), get_b(click, user))

        return col_col
    return _compare_literal(op, left, right.value)


def _compare_literal(op: Callable[[Any, Any], Any], col: Col, lit: object) -> Predicate:
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


def _in_list(operand: Operand, items: list[Operand], node: exp.Expression) -> Predicate:
    """x IN (a, b, ...) is TRUE on a match, else UNKNOWN if any item could be NULL or
    incomparable with x, else FALSE."""
    values = []
    for item in items:
        if not isinstance(item, Const):
            raise unsupported("non-literal in IN list", node)
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

    if isinstance(operand, Const):
        return _constant(test(operand.value))
    get = getter(operand)
    return lambda click, user: test(get(click, user))


def _is_null(operand: Operand) -> Predicate:
    if isinstance(operand, Const):
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


def predicate(node: exp.Expression, scope: Resolver) -> Predicate:
    node = strip_parens(node)
    if isinstance(node, exp.And):
        return _and(predicate(node.this, scope), predicate(node.expression, scope))
    if isinstance(node, exp.Or):
        return _or(predicate(node.this, scope), predicate(node.expression, scope))
    if isinstance(node, exp.Not):
        return _not(predicate(node.this, scope))
    op = _OPS.get(type(node))
    if op is not None:
        return _compare(op, operand(node.this, scope), operand(node.expression, scope))
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            raise unsupported("subquery", node)
        refuse_extra_args(node, frozenset({"this", "expressions"}))
        if not node.expressions:
            raise unsupported("empty IN list", node)
        items = [operand(e, scope) for e in node.expressions]
        return _in_list(operand(node.this, scope), items, node)
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise unsupported(f"IS {node.expression.sql()}", node)
        return _is_null(operand(node.this, scope))
    if isinstance(node, exp.Between):
        if node.args.get("symmetric"):
            raise unsupported("BETWEEN SYMMETRIC")
        subject = operand(node.this, scope)
        low = _compare(operator.ge, subject, operand(node.args["low"], scope))
        high = _compare(operator.le, subject, operand(node.args["high"], scope))
        return _and(low, high)
    if isinstance(node, exp.Boolean):
        return _constant(bool(node.this))
    if isinstance(node, exp.Null):
        return _constant(None)
    if isinstance(node, exp.Column):
        raise QueryError(f"column {node.sql()} used as a condition: compare it with a value")
    raise unsupported(describe(node), node)
