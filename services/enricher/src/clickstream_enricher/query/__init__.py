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

The package follows the compiler's seams: `statement` (the shape of the statement), `scope`
(names), `predicates` (WHERE), `projection` (SELECT and the per-row functions), `refusals` (what
is refused and how it is named), `model` (what they share), and `compiler`, which ties them.
"""

from clickstream_enricher.query.compiler import compile_query
from clickstream_enricher.query.model import (
    CLICK_COLUMNS,
    DEFAULT_QUERY,
    JOIN_KEY,
    USER_COLUMNS,
    CompiledQuery,
    QueryError,
    StreamNames,
)

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
