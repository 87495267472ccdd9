"""`compile_query`: the statement checked, names resolved, WHERE and SELECT compiled, and the
result assembled into a `CompiledQuery`, once at start."""

from __future__ import annotations

from typing import Literal

from sqlglot import exp

from clickstream_enricher.query.aggregation import compile_aggregate, has_aggregates
from clickstream_enricher.query.model import (
    DEFAULT_STREAMS,
    JOIN_KEY,
    CompiledQuery,
    QueryError,
    Side,
    StreamNames,
)
from clickstream_enricher.query.predicates import predicate
from clickstream_enricher.query.projection import projection, row_functions
from clickstream_enricher.query.refusals import (
    AGGREGATE_ALLOWED,
    SELECT_ALLOWED,
    refuse_extra_args,
    unsupported,
)
from clickstream_enricher.query.scope import Scope, StreamScope
from clickstream_enricher.query.statement import (
    MAX_QUERY_DEPTH,
    check_depth,
    check_join_condition,
    join_kind,
    parse_one,
    split_statement,
    stream_of,
)
from clickstream_enricher.windows.plan import AggregateQuery


def compile_query(
    sql: str, streams: StreamNames = DEFAULT_STREAMS
) -> CompiledQuery | AggregateQuery:
    """Parse and validate ``sql`` once; raise QueryError naming whatever cannot be run.

    A query with GROUP BY, HAVING or an aggregate is a windowed aggregation (`AggregateQuery`);
    any other is the row-by-row join (`CompiledQuery`).
    """
    try:
        return _compile(sql, streams)
    except RecursionError:
        # sqlglot's recursive-descent parser gives out on deep nesting (some 50 parentheses).
        raise unsupported(f"expression nested deeper than {MAX_QUERY_DEPTH} levels") from None


def _compile(sql: str, streams: StreamNames) -> CompiledQuery | AggregateQuery:
    if streams.clicks.lower() == streams.users.lower():
        raise QueryError(
            f"the clicks and users streams need different names, both {streams.clicks!r}"
        )
    statement = parse_one(sql)
    check_depth(statement)
    target, select = split_statement(statement, streams)
    if select.args.get("group") or select.args.get("having") or has_aggregates(select):
        refuse_extra_args(select, AGGREGATE_ALLOWED)
        join, scope = _sources(select, streams, one_stream=True)
        return compile_aggregate(select, target, join, scope)
    refuse_extra_args(select, SELECT_ALLOWED)
    join, scope = _sources(select, streams, one_stream=False)
    assert join is not None and isinstance(scope, Scope)
    columns = projection(select, scope)
    where_node = select.args.get("where")
    where = predicate(where_node.this, scope) if where_node is not None else None
    project, matches, evaluate = row_functions(join, columns, where)
    return CompiledQuery(
        target=target,
        join=join,
        columns=tuple(name for name, _ in columns),
        _project=project,
        _matches=matches,
        _evaluate=evaluate,
    )


def _sources(
    select: exp.Select, streams: StreamNames, *, one_stream: bool
) -> tuple[Literal["inner", "left"] | None, Scope | StreamScope]:
    """The FROM clause: clicks joined to users on user_id, or (`one_stream`, aggregations only)
    the input stream alone, whatever its name."""
    from_clause = select.args.get("from_") or select.args.get("from")
    if from_clause is None:
        raise QueryError(f"missing FROM {streams.clicks} JOIN {streams.users} ON ...")
    joins: list[exp.Join] = select.args.get("joins") or []
    if not joins and one_stream:
        return None, _one_stream(from_clause.this, streams)
    first, first_name, first_alias = stream_of(from_clause.this, streams)
    if not joins:
        raise QueryError(
            f"missing JOIN: expected FROM {streams.clicks} JOIN {streams.users} "
            f"ON {streams.clicks}.{JOIN_KEY} = {streams.users}.{JOIN_KEY}"
        )
    if len(joins) > 1:
        raise unsupported("more than one JOIN")
    join_node = joins[0]
    join = join_kind(join_node)
    second, second_name, second_alias = stream_of(join_node.this, streams)
    if first == second:
        raise unsupported(f"joining the {first}s stream {first_name} to itself")
    if first == "user" and join == "left":
        raise unsupported(
            f"{first_name} LEFT JOIN {second_name}: the left side must be the "
            f"{streams.clicks} stream, since only clicks produce rows"
        )

    names = {first: first_name, second: second_name}
    aliases = {first: first_alias, second: second_alias}
    sides: tuple[Side, Side] = ("click", "user")
    scope = Scope(
        qualifiers={side: aliases[side] or names[side] for side in sides},
        aliased={side: names[side] for side in sides if aliases[side]},
    )
    check_join_condition(join_node.args["on"], scope)
    return join, scope


def _one_stream(table: exp.Expression, streams: StreamNames) -> StreamScope:
    side, name, alias = stream_of(table, streams)
    if side != "click":
        raise QueryError(
            f"an aggregation reads the input stream ({streams.clicks}), not {name}: the users "
            "stream is a table, joined to it"
        )
    return StreamScope(name, alias)
