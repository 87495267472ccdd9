"""The live page for the business, served by user-state itself: `GET /` and its script and
style under `/static/`, plain files with no build step and nothing fetched from elsewhere."""

from __future__ import annotations

from pathlib import Path

from clickstream_common.http import Response, Router

STATIC = Path(__file__).parent / "static"


def build_page_routes(router: Router) -> None:
    page = Response(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
    router.add("GET", "/", lambda _: page)
    router.files("/static", STATIC)
