"""user-state's HTTP API: batch lookups for the enricher, and the table for people.

Routes:
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
from collections.abc import Callable
from typing import Any

from clickstream_common.contracts import decode_json, encode_json
from clickstream_common.http import Request, Response, Router
from clickstream_common.metrics import Metrics

from clickstream_user_state.openapi import openapi_document
from clickstream_user_state.store import Found, Lookup, UserStore

MAX_KEYS_PER_LOOKUP = 100_000
# Event times and limits are 64-bit integers, in JSON bodies and in query strings alike.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Past this a float may be a rounded integer outside the 64-bit range (orjson reads those as float).
_EXACT_FLOAT_INT = 2**53
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


class BadRequest(ValueError):
    pass


def _parse_keys(body: bytes) -> list[tuple[str, int | None]]:
    try:
        payload: Any = decode_json(body)
    except ValueError:
        raise BadRequest("body is not JSON") from None
    keys = payload.get("keys") if isinstance(payload, dict) and payload.keys() == {"keys"} else None
    if not isinstance(keys, list):
        raise BadRequest('body must be {"keys": [[user_id, event_time_ms or null], ...]}')
    if len(keys) > MAX_KEYS_PER_LOOKUP:
        raise BadRequest(f"at most {MAX_KEYS_PER_LOOKUP} keys per lookup")
    parsed: list[tuple[str, int | None]] = []
    for index, key in enumerate(keys):
        if not isinstance(key, list) or len(key) != 2 or not isinstance(key[0], str):
            raise BadRequest(f"keys[{index}] must be [user_id, event_time_ms or null]")
        at = key[1]
        if type(at) is float and at.is_integer() and abs(at) <= _EXACT_FLOAT_INT:
            at = int(at)  # JSON has one number type: 1.0 is the integer 1
        if not (at is None or (type(at) is int and INT64_MIN <= at <= INT64_MAX)):
            raise BadRequest(f"keys[{index}] must be [user_id, event_time_ms or null]")
        parsed.append((key[0], at))
    return parsed


def _result(lookup: Lookup) -> dict[str, object]:
    found, user, beyond_history = lookup
    result: dict[str, object] = {
        "found": found.value,
        # as_row() inlined: this runs once per looked-up key.
        "user": (
            {"user_id": user.user_id, "name": user.name, "level": user.level}
            if user is not None
            else None
        ),
    }
    if beyond_history:
        result["beyond_history"] = True
    return result


def _results(store: UserStore, keys: list[tuple[str, int | None]]) -> tuple[list[object], int]:
    """The lookup answers in key order, and how many of them reached past the history."""
    lookup = store.lookup
    results: list[object] = []
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

    def not_ready() -> Response:
        return Response.error(503, "bootstrapping: the users table has not caught up yet")

    def lookup(request: Request) -> Response:
        if not ready():
            return not_ready()
        try:
            keys = _parse_keys(request.body)
        except BadRequest as exc:
            return Response.error(400, str(exc))
        results, beyond_history = _results(store, keys)
        metrics.inc("lookup_requests")
        metrics.inc("lookup_keys", len(keys))
        metrics.inc("lookup_beyond_history", beyond_history)
        return Response.json({"results": results})

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
        return Response.json(_result(found))

    def users(request: Request) -> Response:
        if not ready():
            return not_ready()
        try:
            limit = _int_param(request, "limit", minimum=0)
        except BadRequest as exc:
            return Response.error(400, str(exc))
        levels = request.query.get("level")
        if levels is None:
            return Response.json({"levels": store.levels(), "count": len(store)})
        if not levels[0].strip():
            return Response.error(400, "level must not be empty")
        found = store.by_level(levels[0])
        shown = found if limit is None else found[:limit]
        return Response.json(
            {"level": levels[0].upper(), "count": len(found), "users": [u.as_row() for u in shown]}
        )

    document = Response(200, encode_json(openapi_document(MAX_KEYS_PER_LOOKUP)))

    router.add("POST", "/v1/lookup", lookup)
    router.add("GET", "/openapi.json", lambda _: document)
    router.add("GET", "/v1/users/{user_id}", one_user)
    router.add("GET", "/v1/users", users)
