"""`compile_query`: the statement checked, names resolved, WHERE and SELECT compiled, and the
result assembled into a `CompiledQuery`, once at start."""

from __future__ import annotations

from sqlglot import exp

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
from clickstream_enricher.query.refusals import SELECT_ALLOWED, refuse_extra_args, unsupported
from clickstream_enricher.query.scope import Scope
from clickstream_enricher.query.statement import (
    MAX_QUERY_DEPTH,
    check_depth,
    check_join_condition,
    join_kind,
    parse_one,
    split_statement,
    stream_of,
)


def compile_query(sql: str, streams: StreamNames = DEFAULT_STREAMS) -> CompiledQuery:
    """Parse and validate ``sql`` once; raise QueryError naming whatever cannot be run."""
    try:
        return _compile(sql, streams)
    except RecursionError:
        # sqlglot's recursive-descent parser gives out on deep nesting (some 50 parentheses).
        raise unsupported(f"expression nested deeper than {MAX_QUERY_DEPTH} levels") from None


def _compile(sql: str, streams: StreamNames) -> CompiledQuery:
    if streams.clicks.lower() == streams.users.lower():
        raise QueryError(
            f"the clicks and users streams need different names, both {streams.clicks!r}"
        )
    statement = parse_one(sql)
    check_depth(statement)
    target, select = split_statement(statement, streams)
    refuse_extra_args(select, SELECT_ALLOWED)

    from_clause = select.args.get("from_") or select.args.get("from")
    if from_clause is None:
        raise QueryError(f"missing FROM {streams.clicks} JOIN {streams.users} ON ...")
    first, first_name, first_alias = stream_of(from_clause.this, streams)
    joins: list[exp.Join] = select.args.get("joins") or []
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
