"""user-state's HTTP API as an OpenAPI 3.1 document, served at GET /openapi.json.

The bodies' schemas are generated from the Structs of `clickstream_common.lookup`, the ones the
routes decode and encode with; paths, parameters and the HTTP server's own answers are written by
hand next to the routes in `api.py` and `clickstream_common.http`. All of it is checked against
the running service by tests/integration/test_user_state_fuzz.py (schemathesis: every documented
request, valid and invalid, must get a documented answer and never a 5xx).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from clickstream_common.lookup import INT64_MAX, INT64_MIN, SCHEMA_TYPES

from clickstream_user_state.activity_live import Snapshot
from clickstream_user_state.activity_views import ActiveVips, SessionChanged, UserActivity

_JSON = "application/json"
EXAMPLE_USER_ID: Final = "795-35-5070"
# Event times and limits are signed 64-bit integers, in query strings as in the lookup body.
_INT64: Final = {"minimum": INT64_MIN, "maximum": INT64_MAX}
_LOOKUP_EXAMPLE: Final = {"keys": [[EXAMPLE_USER_ID, 1_764_276_743_123], [EXAMPLE_USER_ID, None]]}


_REF_TEMPLATE: Final = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF_TEMPLATE.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_ERRORS: Final[dict[str, str]] = {
    "400": "Malformed request: the message says what is wrong.",
    "503": "Bootstrapping: the users table has not caught up with the topic yet.",
}
_ACTIVITY_NOT_READY: Final = _json(
    _ref("Error"),
    "Bootstrapping: the users table or the activity topics have not caught up yet.",
)


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(_ref("Error"), _ERRORS[code]) for code in codes}


_USER_ID_PARAMETER: Final = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": "The user's id (the users topic's key), percent-encoded UTF-8.",
    "schema": {"type": "string", "minLength": 1},
    "example": EXAMPLE_USER_ID,
}

_AT_PARAMETER: Final = {
    "name": "at",
    "in": "query",
    "required": False,
    "description": "Event time in epoch milliseconds: answer with the version valid then.",
    "schema": {"type": "integer", **_INT64},
}

_LEVEL_PARAMETER: Final = {
    "name": "level",
    "in": "query",
    "required": False,
    "description": "A level, compared upper-case; without it, the count of users per level.",
    "schema": {"type": "string", "minLength": 1, "pattern": "\\S"},
    "example": "PLATINUM",
}

_DATE_PARAMETER: Final = {
    "name": "date",
    "in": "query",
    "required": False,
    "description": "A business day (BUSINESS_TIMEZONE), YYYY-MM-DD from 1970-01-02 to "
    "9999-12-30; without it, today by the stream's clock.",
    "schema": {"type": "string", "format": "date"},
    "example": "2026-12-03",
}

_LIMIT_PARAMETER: Final = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "With `level`: list at most this many users (the count is of all of them).",
    "schema": {"type": "integer", **_INT64, "minimum": 0},
}


# Objects user-state answers with carry no other field. The Structs themselves stay open, so a
# client ignores a field a newer user-state adds (see `clickstream_common.lookup`).
_CLOSED: Final = (
    "User",
    "LookupResult",
    "LookupResponse",
    "LevelCounts",
    "UsersOfLevel",
    "ActiveVip",
    "ActiveVips",
    "SessionView",
    "UserActivity",
    "Snapshot",
    "Sample",
    "ActionRow",
    "SessionChanged",
)


# The activity routes' bodies, and the data of the stream's events (documented by reference).
ACTIVITY_SCHEMAS: Final = (ActiveVips, UserActivity, Snapshot, SessionChanged)


def _schemas() -> dict[str, Any]:
    """The lookup contract's schemas from its Structs; the HTTP server's own answers by hand."""
    _, schemas = msgspec.json.schema_components(
        (*SCHEMA_TYPES, *ACTIVITY_SCHEMAS), ref_template=_REF_TEMPLATE
    )
    for name in _CLOSED:
        schemas[name]["additionalProperties"] = False
    return {
        # Written by clickstream_common.http for every 4xx and 503, and by the health routes.
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": {"type": "string"}},
        },
        **schemas,
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "user-state",
            "version": "1",
            "description": "The users table of the clickstream VIP pipeline: batch lookups for "
            "the enricher, users by id and by level, VIP activity (who is on the site now, a "
            "user's day), health and metrics.",
        },
        "paths": {
            "/v1/lookup": {
                "post": {
                    "operationId": "lookup",
                    "summary": "Look up many (user_id, event time) pairs in one request.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            _JSON: {"schema": _ref("LookupRequest"), "example": _LOOKUP_EXAMPLE}
                        },
                    },
                    "responses": {
                        "200": _json(_ref("LookupResponse"), "One result per key."),
                        **_errors("400", "503"),
                        "408": _json(_ref("Error"), "The body did not arrive in time."),
                        "411": _json(_ref("Error"), "A chunked body: send Content-Length."),
                        "413": _json(_ref("Error"), "The body is over 16 MiB."),
                    },
                }
            },
            "/v1/users/{user_id}": {
                "get": {
                    "operationId": "getUser",
                    "summary": "One user: the current version, or the one valid at `at`.",
                    "parameters": [_USER_ID_PARAMETER, _AT_PARAMETER],
                    "responses": {
                        "200": _json(_ref("LookupResult"), "The user."),
                        "404": _json(_ref("Error"), "Unknown, deleted or not yet created then."),
                        **_errors("400", "503"),
                    },
                }
            },
            "/v1/users": {
                "get": {
                    "operationId": "listUsers",
                    "summary": "Users of a level (who are our high status customers), or counts.",
                    "parameters": [_LEVEL_PARAMETER, _LIMIT_PARAMETER],
                    "responses": {
                        "200": _json(
                            {"oneOf": [_ref("UsersOfLevel"), _ref("LevelCounts")]},
                            "The users of `level` sorted by id, or the count per level.",
                        ),
                        **_errors("400", "503"),
                    },
                }
            },
            "/v1/vips/active": {
                "get": {
                    "operationId": "activeVips",
                    "summary": "VIPs on the site now, with this session's and today's figures.",
                    "responses": {
                        "200": _json(_ref("ActiveVips"), "Longest on the site first."),
                        "503": _ACTIVITY_NOT_READY,
                    },
                }
            },
            "/v1/users/{user_id}/activity": {
                "get": {
                    "operationId": "userActivity",
                    "summary": "A user's sessions on a business day, and the day's totals.",
                    "parameters": [_USER_ID_PARAMETER, _DATE_PARAMETER],
                    "responses": {
                        "200": _json(_ref("UserActivity"), "The day, empty if no session."),
                        "400": _json(_ref("Error"), _ERRORS["400"]),
                        "404": _json(_ref("Error"), "No session that day, and not a user."),
                        "503": _ACTIVITY_NOT_READY,
                    },
                }
            },
            "/v1/vips/stream": {
                "get": {
                    "operationId": "vipStream",
                    "summary": "VIP activity as Server-Sent Events, for pages that must not poll.",
                    "description": "Opens at once, sends `snapshot` (data: Snapshot) once the "
                    "tables have caught up, then `session` (SessionChanged), `action` (ActionRow) "
                    "and `count` (Sample) events, each data a JSON object, with a comment line "
                    "every 15 s. A client too far behind is disconnected; EventSource reconnects "
                    "and starts again from a snapshot.",
                    "responses": {
                        "200": {
                            "description": "An endless event stream.",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The live page: VIPs on the site now.",
                    "responses": {
                        "200": {
                            "description": "HTML; its script and style under /static/.",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "live",
                    "summary": "Liveness: the process can do work.",
                    "responses": {"200": _json(_ref("Status"), "Alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness: the users table has caught up with the topic.",
                    "responses": {
                        "200": _json(_ref("Status"), "Ready."),
                        "503": _json(_ref("Status"), "Still bootstrapping."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Counters in the Prometheus text format.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI document of this API.")
                    },
                }
            },
        },
        "components": {"schemas": _schemas()},
    }
