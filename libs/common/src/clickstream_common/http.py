"""A small threaded HTTP server for health, metrics and user-state's API.

Standard library only: the API is a handful of JSON routes on a private network, and HTTP/1.1
keep-alive lets the enricher reuse one connection for every batch lookup.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clickstream_common.contracts import encode_json
from clickstream_common.logging import get_logger
from clickstream_common.metrics import Metrics

log = get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    path_params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, payload: object, status: int = 200) -> Response:
        return cls(status, encode_json(payload))

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` may hold `{name}` segments, matched up to the next slash."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self.routes.append(Route(method, re.compile(f"^{regex}$"), handler))

    def dispatch(self, method: str, target: str, body: bytes) -> Response:
        parts = urlsplit(target)
        allowed = False
        for route in self.routes:
            match = route.pattern.match(parts.path)
            if match is None:
                continue
            if route.method != method:
                allowed = True
                continue
            request = Request(match.groupdict(), parse_qs(parts.query), body)
            return route.handler(request)
        if allowed:
            return Response.error(405, f"method {method} not allowed on {parts.path}")
        return Response.error(404, f"no route for {parts.path}")


def add_health_routes(
    router: Router,
    *,
    live: Callable[[], bool],
    ready: Callable[[], bool],
    metrics: Metrics,
) -> None:
    """Liveness: the process can do work. Readiness: it should be given work."""

    def probe(check: Callable[[], bool], name: str) -> Handler:
        def handle(_: Request) -> Response:
            ok = check()
            return Response.json({"status": "ok" if ok else f"not {name}"}, 200 if ok else 503)

        return handle

    router.add("GET", "/healthz", probe(live, "live"))
    router.add("GET", "/readyz", probe(ready, "ready"))
    router.add(
        "GET",
        "/metrics",
        lambda _: Response(200, metrics.render().encode(), "text/plain; version=0.0.4"),
    )


class HttpServer:
    """Serves a `Router` on a daemon thread; `stop` returns once the port is released."""

    def __init__(self, router: Router, host: str, port: int) -> None:
        self._router = router
        server = ThreadingHTTPServer((host, port), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("http server listening", port=self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        router = self._router

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    response = Response.error(413, f"body over {MAX_BODY_BYTES} bytes")
                    self.close_connection = True
                else:
                    body = self.rfile.read(length) if length else b""
                    try:
                        response = router.dispatch(method, self.path, body)
                    except Exception:
                        log.exception("request failed", path=self.path)
                        response = Response.error(500, "internal error")
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                """Access logs would be one line per lookup; metrics count requests instead."""

        return _Handler
