"""HTTP for every service: routes are plain functions from a `Request` to a `Response`, served by
uvicorn through Starlette on a thread of the service's own.

Why these libraries: framing, keep-alive, slow and vanishing clients, streaming responses
(Server-Sent Events) and static files are what a hand-written server gets wrong, and user-state
now serves a public page; uvicorn (the ASGI reference server) and Starlette are the most deployed
and best kept of their kind. uvicorn parses with httptools (llhttp, Node's parser) on uvloop, not
its pure-Python h11 on asyncio: user-state answers a lookup per enricher batch, and at 5,000
clicks/s that cut its CPU from 0.22 to 0.15 of a core. The handlers stay synchronous and quick (a
lookup is a dict walk) and run on the server's event loop: no thread hop per request.

What stays ours: path parameters are matched on the raw request target and percent-decoded
strictly as UTF-8 (a user id may hold `/` as %2F), the query string is parsed strictly, bodies are
capped, and every answer of ours, 4xx or 5xx, is JSON `{"error": reason}` (a request uvicorn
cannot parse as HTTP gets its plain-text 400). 500 is kept for bugs.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from clickstream_common.contracts import encode_json
from clickstream_common.logging import get_logger
from clickstream_common.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from clickstream_common.metrics import Metrics

log = get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_QUERY_FIELDS = 100
# Long, so the enricher's one keep-alive connection is not closed between quiet batches.
KEEP_ALIVE_SECONDS = 300
# Open event streams get this long to end when the service stops.
SHUTDOWN_GRACE_SECONDS = 2


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
Event = ServerSentEvent
# An event stream: what to send, until the client goes away (then the iterator is closed).
EventSource = Callable[[Request], AsyncIterator[Event]]


@dataclass(frozen=True)
class _Stream:
    source: EventSource
    ping_seconds: float
    send_timeout_seconds: float


@dataclass
class Router:
    """The routes a service serves, gathered by its composition root and the builders of each
    part (health, API, page) before the server starts."""

    handlers: dict[str, dict[str, Handler]] = field(default_factory=dict)
    streams: dict[str, _Stream] = field(default_factory=dict)
    mounts: dict[str, Path] = field(default_factory=dict)

    def add(self, method: str, path: str, handler: Handler) -> None:
        """`path` may hold `{name}` segments, matched up to the next raw slash and
        percent-decoded."""
        self.handlers.setdefault(path, {})[method] = handler

    def stream(
        self,
        path: str,
        source: EventSource,
        *,
        ping_seconds: float = 15.0,
        send_timeout_seconds: float = 10.0,
    ) -> None:
        """GET `path` answers Server-Sent Events from `source`, with a comment every
        `ping_seconds` so proxies keep the connection; a client that has not taken an event
        within `send_timeout_seconds` is disconnected (EventSource reconnects it)."""
        self.streams[path] = _Stream(source, ping_seconds, send_timeout_seconds)

    def files(self, path: str, directory: Path) -> None:
        """Static files under `path` (a prefix), from `directory`."""
        self.mounts[path] = directory


class BadTarget(ValueError):
    """The request target cannot be read as text."""


def _decode_component(raw: str, what: str) -> str:
    """Percent-decode a path segment (raw bytes as latin-1 text); they must be UTF-8."""
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadTarget(f"{what} is not UTF-8") from None


def _parse_query(raw: bytes) -> dict[str, list[str]]:
    try:
        return parse_qs(
            raw.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except UnicodeDecodeError:
        raise BadTarget("query string is not UTF-8") from None
    except ValueError:
        raise BadTarget(f"query string has more than {MAX_QUERY_FIELDS} fields") from None


def _parse(request: StarletteRequest) -> Request:
    """Path parameters and query strictly decoded (`BadTarget` if not); the body comes later."""
    params = {
        name: _decode_component(value, f"path parameter {name}")
        for name, value in request.path_params.items()
    }
    return Request(params, _parse_query(request.scope.get("query_string", b"")), b"")


async def _read_body(request: StarletteRequest) -> bytes | Response:
    declared = request.headers.get("content-length", "0")  # uvicorn let only digits through
    if len(declared) > 9 or int(declared) > MAX_BODY_BYTES:
        return Response.error(413, f"body over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return Response.error(413, f"body over {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        return Response.error(400, "body shorter than Content-Length")
    return b"".join(chunks)


def _starlette(response: Response) -> StarletteResponse:
    return StarletteResponse(
        response.body,
        response.status,
        headers=dict(response.headers),
        media_type=response.content_type,
    )


def _endpoint(methods: Mapping[str, Handler]) -> Callable[[StarletteRequest], Any]:
    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        method = "GET" if request.method == "HEAD" else request.method
        try:
            parsed = _parse(request)
        except BadTarget as exc:
            return _starlette(Response.error(400, str(exc)))
        body = await _read_body(request) if method != "GET" else b""
        if isinstance(body, Response):
            return _starlette(body)
        return _starlette(methods[method](replace(parsed, body=body)))

    return endpoint


class _EventStream(EventSourceResponse):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A client that took no event for the send timeout is let go: routine, not a bug."""
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("event stream client too slow, disconnected", path=scope.get("path"))


def _stream_endpoint(stream: _Stream) -> Callable[[StarletteRequest], Any]:
    async def endpoint(request: StarletteRequest) -> StarletteResponse:
        try:
            parsed = _parse(request)
        except BadTarget as exc:
            return _starlette(Response.error(400, str(exc)))
        return _EventStream(
            stream.source(parsed),
            ping=stream.ping_seconds,
            send_timeout=stream.send_timeout_seconds,
            headers={"Cache-Control": "no-store"},
        )

    return endpoint


async def _http_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
    assert isinstance(exc, HTTPException)
    path = request.scope.get("raw_path", b"").decode("latin-1")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        message = f"method {request.method} not allowed on {path}"
        headers["Allow"] = ", ".join(sorted(headers.get("Allow", "").split(", ")))
    elif exc.status_code == 404:
        message = f"no route for {path}"
    else:
        message = str(exc.detail)
    return _starlette(
        replace(Response.error(exc.status_code, message), headers=tuple(headers.items()))
    )


async def _internal_error(request: StarletteRequest, exc: Exception) -> StarletteResponse:
    log.error("request failed", path=request.url.path, error=repr(exc))
    return _starlette(Response.error(500, "internal error"))


class _RawPath:
    """Routes match the raw (still percent-encoded) path, as latin-1 text: an escaped slash in
    a user id stays inside its segment, and bytes that are not UTF-8 reach the handler's strict
    decoding (a 400) instead of being replaced. An HTTP/1.1 request without a Host header is
    refused here (RFC 9112 § 3.2): llhttp lets it through, h11 did not."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope.get("http_version") == "1.1" and not any(
                name == b"host" for name, _ in scope["headers"]
            ):
                refusal = _starlette(Response.error(400, "an HTTP/1.1 request must have a Host"))
                await refusal(scope, receive, send)
                return
            if "raw_path" in scope:
                scope = {**scope, "path": scope["raw_path"].decode("latin-1")}
        await self._app(scope, receive, send)


def build_app(router: Router) -> ASGIApp:
    routes: list[BaseRoute] = [
        Route(path, _endpoint(methods), methods=sorted(methods))
        for path, methods in router.handlers.items()
    ]
    routes += [
        Route(path, _stream_endpoint(stream), methods=["GET"])
        for path, stream in router.streams.items()
    ]
    routes += [Mount(path, StaticFiles(directory=d)) for path, d in router.mounts.items()]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    return _RawPath(app)


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


def _listen(host: str, port: int) -> socket.socket:
    """Bound before the server thread starts: a port already taken fails the service's start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.create_server((host, port), family=family, backlog=2048)
    # Inherited by every accepted connection. uvicorn writes an answer's headers and its body
    # separately; with Nagle's algorithm the body waited for the client's delayed ACK of the
    # headers: 44 ms per lookup in user-state, most of a click's way to RabbitMQ.
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server


class HttpServer:
    """Serves a `Router` on a daemon thread; `stop` returns once the port is released."""

    def __init__(self, router: Router, host: str, port: int) -> None:
        self._socket = _listen(host, port)
        config = uvicorn.Config(
            build_app(router),
            http="httptools",
            loop="uvloop",
            lifespan="off",
            log_config=None,
            access_log=False,  # one line per lookup; metrics count requests instead
            server_header=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        )
        self._server = uvicorn.Server(config)
        # Its start and stop lines repeat ours; what it warns of (a request that is not HTTP) stays.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on port {self.port}")
            time.sleep(0.01)
        log.info("http server listening", port=self.port)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(SHUTDOWN_GRACE_SECONDS + 10)
        self._socket.close()
