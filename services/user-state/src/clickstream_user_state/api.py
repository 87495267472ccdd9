"""user-state's HTTP API: batch lookups for the enricher, and the table for people.

Routes:
  POST /v1/lookup               {"keys": [[user_id, event_time_ms | null], ...]} -> {"results":
                                [{"found": "found"|"unknown"|"absent", "user": {...}|null}, ...]}
  GET  /v1/users/{user_id}      the current version (or ?at=<epoch ms> for the one valid then)
  GET  /v1/users?level=PLATINUM users of a level, the seed's "who are our high status customers"
Lookups answer 503 until the table has caught up, so nobody joins against half a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clickstream_common.contracts import decode_json
from clickstream_common.http import Request, Response, Router
from clickstream_common.metrics import Metrics

from clickstream_user_state.store import Found, Lookup, UserStore

MAX_KEYS_PER_LOOKUP = 100_000


class BadRequest(ValueError):
    pass


def _parse_keys(body: bytes) -> list[tuple[str, int | None]]:
    try:
        payload: Any = decode_json(body)
    except ValueError:
        raise BadRequest("body is not JSON") from None
    keys = payload.get("keys") if isinstance(payload, dict) else None
    if not isinstance(keys, list):
        raise BadRequest('body must be {"keys": [[user_id, event_time_ms or null], ...]}')
    if len(keys) > MAX_KEYS_PER_LOOKUP:
        raise BadRequest(f"at most {MAX_KEYS_PER_LOOKUP} keys per lookup")
    parsed: list[tuple[str, int | None]] = []
    for index, key in enumerate(keys):
        if (
            not isinstance(key, list)
            or len(key) != 2
            or not isinstance(key[0], str)
            or not (key[1] is None or (isinstance(key[1], int) and not isinstance(key[1], bool)))
        ):
            raise BadRequest(f"keys[{index}] must be [user_id, event_time_ms or null]")
        parsed.append((key[0], key[1]))
    return parsed


def _result(lookup: Lookup) -> dict[str, object]:
    user = lookup.user
    result: dict[str, object] = {
        "found": lookup.found.value,
        "user": user.as_row() if user is not None else None,
    }
    if lookup.beyond_history:
        result["beyond_history"] = True
    return result


def _int_param(request: Request, name: str) -> int | None:
    values = request.query.get(name)
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


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
        results = [store.lookup(user_id, at) for user_id, at in keys]
        metrics.inc("lookup_requests")
        metrics.inc("lookup_keys", len(keys))
        metrics.inc("lookup_beyond_history", sum(1 for r in results if r.beyond_history))
        return Response.json({"results": [_result(r) for r in results]})

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
        levels = request.query.get("level")
        if not levels:
            return Response.json({"levels": store.levels(), "count": len(store)})
        try:
            limit = _int_param(request, "limit")
        except BadRequest as exc:
            return Response.error(400, str(exc))
        found = store.by_level(levels[0])
        shown = found if limit is None else found[: max(limit, 0)]
        return Response.json(
            {"level": levels[0].upper(), "count": len(found), "users": [u.as_row() for u in shown]}
        )

    router.add("POST", "/v1/lookup", lookup)
    router.add("GET", "/v1/users/{user_id}", one_user)
    router.add("GET", "/v1/users", users)
