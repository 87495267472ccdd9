"""user-state's activity routes, over the sessions and business days the windowed queries write:

  GET /v1/vips/active                        VIPs on the site now (by the stream's clock), each
                                             with this session's and today's figures
  GET /v1/users/{user_id}/activity?date=D    that user's sessions on business day D
                                             (YYYY-MM-DD, default: today), and the day's totals
  GET /v1/vips/stream                        Server-Sent Events of the same, live
                                             (`activity_live.py`)
The first two answer 503 until the users table and the activity topics have caught up; the
stream opens at once and sends its snapshot when they have.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import msgspec
from clickstream_common.http import Request, Response, Router
from clickstream_common.lookup import Found

from clickstream_user_state.activity_live import LiveActivity
from clickstream_user_state.activity_views import Views

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Epoch milliseconds hold these, in every time zone, with the day after.
_FIRST_DAY, _LAST_DAY = date(1970, 1, 2), date(9999, 12, 30)
_encoder = msgspec.json.Encoder()


def build_activity_routes(
    router: Router,
    views: Views,
    ready: Callable[[], bool],
    live: LiveActivity | None = None,
) -> None:
    """`live`: also serve the event stream."""

    def not_ready() -> Response:
        return Response.error(
            503, "bootstrapping: the users table or the activity topics have not caught up yet"
        )

    def active(_: Request) -> Response:
        if not ready():
            return not_ready()
        return Response(200, _encoder.encode(views.active()))

    def user_activity(request: Request) -> Response:
        if not ready():
            return not_ready()
        user_id = request.path_params["user_id"]
        dates = request.query.get("date")
        if dates is None:
            day = views.board.business_day(views.now_ms())
        else:
            text = dates[0].strip()
            try:
                if _DATE.fullmatch(text) is None:
                    raise ValueError(text)
                day = date.fromisoformat(text)
            except ValueError:
                return Response.error(400, "date must be a calendar date, YYYY-MM-DD")
            if not _FIRST_DAY <= day <= _LAST_DAY:
                return Response.error(400, f"date must be from {_FIRST_DAY} to {_LAST_DAY}")
        found = views.user_day(user_id, day)
        if found is None:
            user = views.user(user_id)
            if user is not Found.FOUND:
                return Response.error(404, f"user {user.value}")
            found = views.empty_day(user_id, day)
        return Response(200, _encoder.encode(found))

    router.add("GET", "/v1/vips/active", active)
    router.add("GET", "/v1/users/{user_id}/activity", user_activity)
    if live is not None:
        router.stream("/v1/vips/stream", lambda request: live.stream(ready))
