"""A small threaded HTTP server for health, metrics and user-state's API.

Standard library only: the API is a handful of JSON routes on a private network, and HTTP/1.1
keep-alive lets the enricher reuse one connection for every batch lookup.

A bad request gets a 4xx, never a 5xx or a dropped connection: a malformed or duplicated
Content-Length, a chunked body, a body shorter than announced or too slow to arrive, a path or
query string that is not UTF-8. 500 is kept for bugs.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

from clickstream_common.contracts import encode_json
from clickstream_common.logging import get_logger
from clickstream_common.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from clickstream_common.metrics import Metrics

log = get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
# A body must arrive within this once its headers have: a stalled client cannot pin a thread.
BODY_TIMEOUT_SECONDS = 30.0
MAX_QUERY_FIELDS = 100
_DIGITS = re.compile(r"[0-9]+")


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
    headers: tuple[tuple[str, str], ...] = ()

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


class BadTarget(ValueError):
    """The request target cannot be read as text."""


def _as_bytes(text: str) -> bytes:
    try:
        return text.encode("latin-1")  # http.server decodes the request line as ISO-8859-1
    except UnicodeEncodeError:
        return text.encode("utf-8")  # a caller that already holds text


def _decode_component(raw: str, what: str) -> str:
    """Percent-decode a path segment; raw or escaped, its bytes must be UTF-8."""
    try:
        return unquote_to_bytes(_as_bytes(raw)).decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarget(f"{what} is not UTF-8") from None


def _parse_query(raw: str) -> dict[str, list[str]]:
    try:
        text = _as_bytes(raw).decode("utf-8")
        return parse_qs(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS
        )
    except UnicodeDecodeError:
        raise BadTarget("query string is not UTF-8") from None
    except ValueError:
        raise BadTarget(f"query string has more than {MAX_QUERY_FIELDS} fields") from None


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` may hold `{name}` segments, matched up to the next slash and percent-decoded."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self.routes.append(Route(method, re.compile(f"^{regex}$"), handler))

    def dispatch(self, method: str, target: str, body: bytes) -> Response:
        parts = urlsplit(target)
        allowed: set[str] = set()
        for route in self.routes:
            match = route.pattern.match(parts.path)
            if match is None:
                continue
            if route.method != method:
                allowed.add(route.method)
                continue
            try:
                params = {
                    name: _decode_component(value, f"path parameter {name}")
                    for name, value in match.groupdict().items()
                }
                query = _parse_query(parts.query)
            except BadTarget as exc:
                return Response.error(400, str(exc))
            return route.handler(Request(params, query, body))
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            error = Response.error(405, f"method {method} not allowed on {parts.path}")
            return replace(error, headers=(("Allow", ", ".join(sorted(allowed))),))
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
        lambda _: Response(200, metrics.render(), METRICS_CONTENT_TYPE),
    )


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is routine; anything else goes to the log, not
        as a bare traceback on stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("http client went away", error=type(error).__name__)
        else:
            log.exception("http connection failed")


class HttpServer:
    """Serves a `Router` on a daemon thread; `stop` returns once the port is released."""

    def __init__(self, router: Router, host: str, port: int) -> None:
        self._router = router
        server = _Server((host, port), self._handler_class())
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
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK of the headers: 40 ms added to every keep-alive lookup.
            disable_nagle_algorithm = True

            def _read_body(self) -> bytes | Response:
                """The body, or the error response when it cannot be read as announced."""
                if "Transfer-Encoding" in self.headers:
                    return Response.error(
                        411, "chunked bodies are not supported: send Content-Length"
                    )
                lengths = self.headers.get_all("Content-Length") or []
                if not lengths:
                    return b""
                digits = lengths[0].strip()
                if len(set(lengths)) > 1 or _DIGITS.fullmatch(digits) is None:
                    return Response.error(400, "Content-Length must be one non-negative integer")
                length = int(digits) if len(digits) <= 18 else MAX_BODY_BYTES + 1
                if length > MAX_BODY_BYTES:
                    return Response.error(413, f"body over {MAX_BODY_BYTES} bytes")
                if length == 0:
                    return b""
                self.connection.settimeout(BODY_TIMEOUT_SECONDS)
                try:
                    body = self.rfile.read(length)
                except TimeoutError:
                    return Response.error(408, "body did not arrive in time")
                finally:
                    self.connection.settimeout(None)
                if len(body) < length:
                    return Response.error(400, "body shorter than Content-Length")
                return body

            def _serve(self, method: str, *, send_body: bool = True) -> None:
                body = self._read_body()
                if isinstance(body, Response):
                    # What follows on the connection cannot be framed: answer, then close it.
                    response = body
                    self.close_connection = True
                else:
                    try:
                        response = router.dispatch(method, self.path, body)
                    except Exception:
                        log.exception("request failed", path=self.path)
                        response = Response.error(500, "internal error")
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                    for name, value in response.headers:
                        self.send_header(name, value)
                    if self.close_connection:
                        self.send_header("Connection", "close")
                    self.end_headers()
                    if send_body:
                        self.wfile.write(response.body)
                except OSError:
                    self.close_connection = True  # the client went away; nothing to tell it

            def do_GET(self) -> None:
                self._serve("GET")

            def do_HEAD(self) -> None:
                self._serve("GET", send_body=False)

            def do_POST(self) -> None:
                self._serve("POST")

            def __getattr__(self, name: str) -> Callable[[], None]:
                """Any other method (PUT, TRACE, ...) goes to the router too, which answers
                405 with Allow (or 404), instead of http.server's 501."""
                if name.startswith("do_"):
                    method = name[3:]
                    return lambda: self._serve(method)
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                """Access logs would be one line per lookup; metrics count requests instead."""

        return _Handler
