"""Refusing what the enricher cannot honour, by a name a SQL user recognises.

Every construct the compiler does not evaluate is refused at start, never ignored: a clause
left unread would silently change what a query means.
"""

from __future__ import annotations

from typing import Final

from sqlglot import exp

from clickstream_enricher.query.model import QueryError


def unsupported(what: str, node: exp.Expression | None = None) -> QueryError:
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


def describe(node: exp.Expression) -> str:
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
SELECT_ALLOWED: Final = frozenset({"expressions", "from", "joins", "where"})
AGGREGATE_ALLOWED: Final = SELECT_ALLOWED | {"group", "having"}


def refuse_extra_args(node: exp.Expression, allowed: frozenset[str]) -> None:
    """Refuse any clause we do not evaluate, so it cannot be silently ignored."""
    present = [k.rstrip("_") for k, v in node.args.items() if v and k.rstrip("_") not in allowed]
    if not present:
        return
    ordered = [k for k in _CLAUSES if k in present] + [k for k in present if k not in _CLAUSES]
    raise unsupported(_CLAUSES.get(ordered[0], ordered[0].upper().replace("_", " ")))


def strip_parens(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node
