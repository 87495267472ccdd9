"""Windowed GROUP BY: the group key and window, the SELECT list of keys, window properties and
aggregates, and HAVING, compiled into an `AggregateQuery` once at start.

The group key must include the input's key, user_id: each replica owns the keys of the
partitions it is assigned, which is only true when a group never spans two users.
"""

from __future__ import annotations

from typing import Final, Literal

from sqlglot import exp

from clickstream_enricher.query.model import (
    JOIN_KEY,
    Col,
    Getter,
    Predicate,
    QueryError,
    Row,
)
from clickstream_enricher.query.predicates import getter, operand, predicate
from clickstream_enricher.query.refusals import (
    describe,
    refuse_extra_args,
    strip_parens,
    unsupported,
)
from clickstream_enricher.query.scope import Resolver
from clickstream_enricher.query.windowing import is_window, window_property, window_spec
from clickstream_enricher.windows.aggregates import AggregateKind, AggregateSpec
from clickstream_enricher.windows.plan import AggregateQuery, OutputColumn
from clickstream_enricher.windows.spec import WindowSpec

# Fields every output row carries besides the SELECT list (README § Windowed queries).
RESERVED: Final[dict[str, str | None]] = {
    "window_start": "window_start",
    "window_end": "window_end",
    "last_event_time": None,
    "final": None,
    "retract": None,
}
_SIMPLE: Final[dict[type[exp.Expression], AggregateKind]] = {
    exp.Sum: "sum",
    exp.Min: "min",
    exp.Max: "max",
    exp.Avg: "avg",
}


class _Aggregates:
    """The aggregates of SELECT and HAVING, one accumulator per distinct expression."""

    def __init__(self, scope: Resolver) -> None:
        self._scope = scope
        self.specs: list[AggregateSpec] = []
        self._index: dict[str, int] = {}

    def index_of(self, node: exp.Expression) -> int:
        text = node.sql().lower()
        if text not in self._index:
            self._index[text] = len(self.specs)
            self.specs.append(self._compile(node))
        return self._index[text]

    def _compile(self, node: exp.Expression) -> AggregateSpec:
        condition: Predicate | None = None
        if isinstance(node, exp.Filter):
            where = node.expression
            assert isinstance(where, exp.Where)
            condition = predicate(where.this, self._scope)
            node = strip_parens(node.this)
        if isinstance(node, exp.Count):
            refuse_extra_args(node, frozenset({"this", "big_int"}))
            arg = strip_parens(node.this)
            if isinstance(arg, exp.Star):
                return AggregateSpec("count_star", None, condition)
            if isinstance(arg, exp.Distinct):
                if len(arg.expressions) != 1:
                    raise unsupported("COUNT(DISTINCT) of more than one expression", node)
                return AggregateSpec("count_distinct", self._scalar(arg.expressions[0]), condition)
            return AggregateSpec("count", self._scalar(arg), condition)
        kind = _SIMPLE.get(type(node))
        if kind is None:
            raise unsupported(describe(node), node)
        refuse_extra_args(node, frozenset({"this"}))
        if isinstance(node.this, exp.Distinct):
            raise unsupported(f"{kind.upper()}(DISTINCT ...)", node)
        return AggregateSpec(kind, self._scalar(node.this), condition)

    def _scalar(self, node: exp.Expression) -> Getter:
        """An aggregate's argument: a column, a constant, or CASE WHEN ... THEN ... ELSE ... END."""
        node = strip_parens(node)
        if isinstance(node, exp.Case):
            return self._case(node)
        if isinstance(node, exp.AggFunc):
            raise unsupported("aggregate inside an aggregate", node)
        found = operand(node, self._scope)
        if isinstance(found, Col):
            return getter(found)
        value = found.value
        return lambda click, user: value

    def _case(self, node: exp.Case) -> Getter:
        if node.this is not None:
            raise unsupported("CASE <value> WHEN (write CASE WHEN <condition>)", node)
        branches = [
            (predicate(branch.this, self._scope), self._scalar(branch.args["true"]))
            for branch in node.args["ifs"]
        ]
        default_node = node.args.get("default")
        default = self._scalar(default_node) if default_node is not None else None

        def case(click: Row, user: Row | None) -> object:
            for condition, value in branches:
                if condition(click, user) is True:
                    return value(click, user)
            return None if default is None else default(click, user)

        return case


def _aggregate(node: exp.Expression) -> bool:
    node = strip_parens(node)
    return isinstance(node, exp.AggFunc | exp.Filter)


def has_aggregates(select: exp.Select) -> bool:
    """Whether the SELECT list aggregates (an aggregate in an OVER window does not: refused)."""
    return any(
        agg.find_ancestor(exp.Window) is None
        for item in select.expressions
        for agg in item.find_all(exp.AggFunc)
    )


def compile_aggregate(
    select: exp.Select,
    target: str,
    join_kind: Literal["inner", "left"] | None,
    scope: Resolver,
) -> AggregateQuery:
    """`join_kind` is None when the query reads one stream."""
    group = select.args.get("group")
    if group is None:
        raise unsupported("aggregation without GROUP BY a window (SESSION, TUMBLE or HOP)")
    refuse_extra_args(group, frozenset({"expressions"}))
    windows = [e for e in group.expressions if is_window(e)]
    if not windows:
        raise unsupported(
            "GROUP BY without a window: add SESSION(...), TUMBLE(...) or HOP(...) over the "
            "input's event_time"
        )
    if len(windows) > 1:
        raise unsupported("more than one window in GROUP BY")
    window_call = strip_parens(windows[0])
    assert isinstance(window_call, exp.Anonymous)
    window: WindowSpec = window_spec(window_call, scope)

    keys: list[Col] = []
    for item in group.expressions:
        if is_window(item):
            continue
        item = strip_parens(item)
        if not isinstance(item, exp.Column):
            raise unsupported(f"GROUP BY {describe(item)} (group by columns)", item)
        col = scope.resolve(item)
        if col not in keys:
            keys.append(col)
    user_key = _user_key(keys, join_kind)

    aggregates = _Aggregates(scope)
    outputs = _outputs(select, keys, window_call, aggregates, scope)
    having_node = select.args.get("having")
    having = _having(having_node.this, keys, aggregates, scope) if having_node else None
    where_node = select.args.get("where")
    return AggregateQuery(
        target=target,
        join=join_kind,
        where=predicate(where_node.this, scope) if where_node is not None else None,
        window=window,
        keys=tuple(getter(col) for col in keys),
        user_key=user_key,
        aggregates=tuple(aggregates.specs),
        outputs=tuple(outputs),
        having=having,
    )


def _user_key(keys: list[Col], join_kind: Literal["inner", "left"] | None) -> int:
    accepted = [Col("click", JOIN_KEY)]
    if join_kind == "inner":
        accepted.append(Col("user", JOIN_KEY))  # equal to the click's in every joined row
    for i, col in enumerate(keys):
        if col in accepted:
            return i
    raise QueryError(
        f"the GROUP BY key must include {JOIN_KEY}, the input's key: each replica aggregates "
        "the users of the partitions it is assigned, so a group cannot span users"
    )


def _outputs(
    select: exp.Select,
    keys: list[Col],
    window_call: exp.Anonymous,
    aggregates: _Aggregates,
    scope: Resolver,
) -> list[OutputColumn]:
    outputs: list[OutputColumn] = []
    for item in select.expressions:
        alias = item.alias if isinstance(item, exp.Alias) else None
        node = strip_parens(item.this if isinstance(item, exp.Alias) else item)
        prop = window_property(node, window_call)
        if prop is not None:
            column = OutputColumn(alias or prop, prop)  # type: ignore[arg-type]
        elif _aggregate(node):
            column = OutputColumn(alias or node.sql(), "aggregate", aggregates.index_of(node))
        elif isinstance(node, exp.Star) or (
            isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
        ):
            raise unsupported("* in an aggregating SELECT (name the group keys)", item)
        elif isinstance(node, exp.Column):
            col = scope.resolve(node)
            if col not in keys:
                raise QueryError(
                    f"column {node.sql()} is neither in GROUP BY nor inside an aggregate"
                )
            column = OutputColumn(alias or col.name, "key", keys.index(col))
        elif is_window(node):
            raise unsupported(f"{node.sql()} in the SELECT list (use its _START or _END)", node)
        else:
            raise unsupported(f"{describe(node)} in an aggregating SELECT list", node)
        outputs.append(column)
    shown = {column.index for column in outputs if column.source == "key"}
    for i, col in enumerate(keys):
        if i not in shown:
            raise QueryError(
                f"GROUP BY column {col.name} is not in the SELECT list: a consumer tells windows "
                "apart by their group key and window_start, so every key column must be shown"
            )
    seen: set[str] = set()
    for column in outputs:
        if column.name in seen:
            raise QueryError(f"duplicate output column {column.name!r}: give one of them an alias")
        seen.add(column.name)
        if column.name in RESERVED and RESERVED[column.name] != column.source:
            raise QueryError(
                f"output column {column.name!r} is reserved: every row carries "
                + ", ".join(RESERVED)
            )
    return outputs


def _having(
    node: exp.Expression, keys: list[Col], aggregates: _Aggregates, scope: Resolver
) -> Predicate:
    """HAVING over the group's values: each aggregate and key becomes a column of that row."""
    root = exp.Paren(this=node.copy())  # a parent even for the top node, so it can be replaced
    outermost = [
        agg
        for agg in root.find_all(exp.AggFunc, exp.Filter)
        if agg.find_ancestor(exp.AggFunc, exp.Filter) is None
    ]
    for agg in outermost:
        assert isinstance(agg, exp.Expression)
        agg.replace(_value_column(f"a{aggregates.index_of(agg)}"))
    for column in list(root.find_all(exp.Column)):
        if column.meta.get("group_value"):
            continue
        col = scope.resolve(column)
        if col not in keys:
            raise QueryError(
                f"column {column.sql()} in HAVING is neither in GROUP BY nor inside an aggregate"
            )
        column.replace(_value_column(f"k{keys.index(col)}"))
    return predicate(root, _ValuesScope())


def _value_column(name: str) -> exp.Column:
    column = exp.column(name, quoted=True)
    column.meta["group_value"] = True
    return column


class _ValuesScope:
    """Resolves the value columns `_having` put in place of aggregates and keys."""

    def resolve(self, col: exp.Column) -> Col:
        return Col("click", col.name)
