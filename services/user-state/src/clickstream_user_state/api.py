"""user-state's HTTP API: batch lookups for the enricher, and the table for people.

Routes (their bodies are the Structs of `clickstream_common.lookup`):
  POST /v1/lookup               {"keys": [[user_id, event_time_ms | null], ...]} -> {"results":
                                [{"found": "found"|"unknown"|"absent", "user": {...}|null}, ...]}
  GET  /v1/users/{user_id}      the current version (or ?at=<epoch ms> for the one valid then)
  GET  /v1/users?level=PLATINUM users of a level, the seed's "who are our high status customers"
  GET  /openapi.json            the OpenAPI document of all of the above, health and metrics
Lookups answer 503 until the table has caught up, so nobody joins against half a table.
A bad request is answered 4xx with the reason, never 5xx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

from clickstream_common.contracts import encode_json
from clickstream_common.http import Request, Response, Router
from clickstream_common.lookup import (
    INT64_MAX,
    INT64_MIN,
    BadLookup,
    Found,
    Key,
    LevelCounts,
    LookupResponse,
    LookupResult,
    UsersOfLevel,
    decode_request,
    encode_answer,
)
from clickstream_common.lookup import User as WireUser
from clickstream_common.metrics import Metrics

from clickstream_user_state.openapi import openapi_document
from clickstream_user_state.store import Lookup, UserStore

# Query parameters are 64-bit integers like the event times of the lookup body.
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


class BadRequest(ValueError):
    pass


# The answers without a user are the same every time: built once, not once per key.
_MISSING: Final = {found: LookupResult(found, None) for found in Found}


def _result(lookup: Lookup) -> LookupResult:
    found, user, beyond_history = lookup
    if user is None:
        if not beyond_history:
            return _MISSING[found]
        return LookupResult(found, None, True)
    return LookupResult(found, WireUser(user.user_id, user.name, user.level), beyond_history)


def _results(store: UserStore, keys: list[Key]) -> tuple[list[LookupResult], int]:
    """The lookup answers in key order, and how many of them reached past the history."""
    lookup = store.lookup
    results: list[LookupResult] = []
    beyond = 0
    for user_id, at in keys:
        found = lookup(user_id, at)
        if found.beyond_history:
            beyond += 1
        results.append(_result(found))
    return results, beyond


def _int_param(request: Request, name: str, *, minimum: int | None = None) -> int | None:
    values = request.query.get(name)
    if values is None:
        return None
    text = values[0].strip()
    # int() alone would also take "1_000" and non-ASCII digits, and raise past 4300 digits.
    if _INTEGER.fullmatch(text) is None or not INT64_MIN <= int(text) <= INT64_MAX:
        raise BadRequest(f"{name} must be a 64-bit integer")
    value = int(text)
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}")
    return value


def build_routes(
    router: Router, store: UserStore, ready: Callable[[], bool], metrics: Metrics
) -> None:
    metrics.counter("lookup_requests", "batch lookup requests served")
    metrics.counter("lookup_keys", "user ids looked up")
    metrics.counter("lookup_beyond_history", "lookups older than the retained history")
    metrics.histogram("lookup", "a batch lookup answered: decode, look up, encode")

    def not_ready() -> Response:
        return Response.error(503, "bootstrapping: the users table has not caught up yet")

    def lookup(request: Request) -> Response:
        if not ready():
            return not_ready()
        started = time.perf_counter()
        try:
            keys = decode_request(request.body)
        except BadLookup as exc:
            return Response.error(400, str(exc))
        results, beyond_history = _results(store, keys)
        metrics.inc("lookup_requests")
        metrics.inc("lookup_keys", len(keys))
        metrics.inc("lookup_beyond_history", beyond_history)
        answer = encode_answer(LookupResponse(results))
        metrics.observe("lookup", time.perf_counter() - started)
        return Response(200, answer)

    def one_user(request: Request) -> Response:
        if not ready():
            return not_ready()
        try:
            at = _int_param(request, "at")
        except BadRequest as exc:
            return Response.error(400, str(exc))
        found = store.lookup(request.path_params["user_id"], at)
        if found.found is not Found.FOUND:
            return Response.error(404, f"user {found.found.value}")
        return Response(200, encode_answer(_result(found)))

    def users(request: Request) -> Response:
        if not ready():
            return not_ready()
        try:
            limit = _int_param(request, "limit", minimum=0)
        except BadRequest as exc:
            return Response.error(400, str(exc))
        levels = request.query.get("level")
        if levels is None:
            return Response(200, encode_answer(LevelCounts(store.levels(), len(store))))
        if not levels[0].strip():
            return Response.error(400, "level must not be empty")
        found = store.by_level(levels[0])
        shown = found if limit is None else found[:limit]
        rows = [WireUser(*user) for user in shown]
        return Response(200, encode_answer(UsersOfLevel(levels[0].upper(), len(found), rows)))

    document = Response(200, encode_json(openapi_document()))

    router.add("POST", "/v1/lookup", lookup)
    router.add("GET", "/openapi.json", lambda _: document)
    router.add("GET", "/v1/users/{user_id}", one_user)
    router.add("GET", "/v1/users", users)
