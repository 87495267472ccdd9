"""The HTTP server and user-state's routes, in process over a real socket: a bad request is
answered 4xx with a reason, never 5xx, never a dropped connection or a stuck thread."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
from clickstream_common.contracts import User
from clickstream_common.http import HttpServer, Router, add_health_routes
from clickstream_common.metrics import Metrics
from clickstream_user_state.api import build_routes
from clickstream_user_state.store import UserStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    store = UserStore()
    store.apply("a b", User("a b", "Ann", "GOLD"), 1)
    store.apply("ü/x", User("ü/x", "Üma", "PLATINUM"), 1)
    router = Router()
    metrics = Metrics(prefix="test")
    add_health_routes(router, live=lambda: True, ready=lambda: True, metrics=metrics)
    build_routes(router, store, lambda: True, metrics)
    running = HttpServer(router, "127.0.0.1", 0)
    running.start()
    yield running
    running.stop()


def exchange(server: HttpServer, request: bytes) -> tuple[int, bytes]:
    """Send one request, half-close, read the whole answer: (status, body)."""
    answer = exchange_or_closed(server, request)
    assert answer is not None, "connection closed without an answer"
    return answer


def exchange_or_closed(server: HttpServer, request: bytes) -> tuple[int, bytes] | None:
    """As `exchange`, but None when the server closes the connection without answering."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n")[0]
    version, status, _ = status_line.split(b" ", 2)
    assert version == b"HTTP/1.1"
    return int(status), body


def http(method: str, target: bytes, body: bytes | None = None, headers: bytes = b"") -> bytes:
    length = b"" if body is None else b"Content-Length: %d\r\n" % len(body)
    return (
        method.encode() + b" " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        + length + headers + b"\r\n" + (body or b"")
    )  # fmt: skip


# Requests that are not valid HTTP/1.1: uvicorn's parser (httptools) refuses them with its own
# plain-text 400 ("Invalid HTTP request received.") before any route sees them. A method it does
# not know is one of them.
NOT_HTTP = [
    b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n{}",
    b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: \xb2\r\n\r\n{}",
    b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    http("GET", b"/v1/users/\xff"),  # a request target must be ASCII
    http("GET", b"/v1/users/a?at=\xb2"),
    "GET /v1/users/ü%2Fx HTTP/1.1\r\nHost: t\r\n\r\n".encode(),
    http("BREW", b"/healthz"),
]


@pytest.mark.parametrize("request_bytes", NOT_HTTP)
def test_what_is_not_http_gets_the_servers_400(server, request_bytes):
    assert exchange(server, request_bytes) == (400, b"Invalid HTTP request received.")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (http("POST", b"/v1/lookup", b"{}"), 400),
        (b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n", 413),
        (http("POST", b"/v1/lookup", b"[" * 5000 + b"]" * 5000), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [["a", 1e400]]}'), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [["a", 18446744073709551616]]}'), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [], "more": 1}'), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [["\xff", null]]}'), 400),
        (http("GET", b"/v1/users/%ff"), 400),
        (http("GET", b"/v1/users/a?at=%ff"), 400),
        (http("GET", b"/v1/users/a?at=1_000"), 400),
        (http("GET", b"/v1/users/a?at=" + b"9" * 5000), 400),
        (http("GET", b"/v1/users?limit=-1"), 400),
        (http("GET", b"/v1/users?limit=x"), 400),
        (http("GET", b"/v1/users?" + b"&".join(b"a=%d" % i for i in range(200))), 400),
        (http("DELETE", b"/v1/users/a"), 405),
        (http("PUT", b"/v1/lookup", b"{}"), 405),
        (http("PATCH", b"/nowhere"), 404),
        (http("TRACE", b"/v1/users/a"), 405),
        (b'POST /v1/lookup HTTP/1.1\r\nContent-Length: 12\r\n\r\n{"keys": []}', 400),  # no Host
        (http("GET", b"/v1/users?level="), 400),
        (http("GET", b"/v1/users?level=gold&limit="), 400),
        (http("GET", b"/v1/users/a?at=9223372036854775808"), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [["a", -9223372036854775809]]}'), 400),
        (http("POST", b"/v1/lookup", b'{"keys": [["a", 1.5]]}'), 400),
    ],
)
def test_bad_requests_get_a_4xx_with_the_reason(server, request_bytes, status):
    got, body = exchange(server, request_bytes)
    assert got == status, body
    assert json.loads(body)["error"]


def test_a_body_cut_short_gets_a_400_or_a_closed_connection(server):
    """The client half-closed before sending what it announced: uvicorn may close the connection
    instead of answering; never a 5xx, never a connection left open."""
    request = b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n{}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = sock.recv(65536)
    assert data == b"" or data.startswith(b"HTTP/1.1 400 ")


def test_chunked_bodies_are_read(server):
    body = json.dumps({"keys": [["a b", None]]}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = b"POST /v1/lookup HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, answer = exchange(server, request + chunked)
    assert status == 200 and json.loads(answer)["results"][0]["user"]["name"] == "Ann"


def test_path_parameters_are_percent_decoded_utf8(server):
    status, body = exchange(server, http("GET", b"/v1/users/a%20b"))
    assert status == 200 and json.loads(body)["user"]["name"] == "Ann"
    status, body = exchange(server, http("GET", b"/v1/users/%C3%BC%2Fx"))
    assert status == 200 and json.loads(body)["user"]["name"] == "Üma"


def test_405_names_the_allowed_methods(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(http("DELETE", b"/v1/users/a"))
        sock.shutdown(socket.SHUT_WR)
        head = sock.recv(65536).partition(b"\r\n\r\n")[0]
    status, *fields = head.split(b"\r\n")
    headers = dict(field.split(b": ", 1) for field in fields)
    assert status.startswith(b"HTTP/1.1 405")
    assert {k.lower(): v for k, v in headers.items()}[b"allow"] == b"GET, HEAD"


def test_integral_json_numbers_are_integers(server):
    body = json.dumps({"keys": [["a b", 1.0], ["a b", 1e3], ["a b", None]]}).encode()
    status, answer = exchange(server, http("POST", b"/v1/lookup", body))
    assert status == 200
    assert [r["found"] for r in json.loads(answer)["results"]] == ["found"] * 3


def test_head_answers_like_get_without_a_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(http("HEAD", b"/healthz"))
        sock.shutdown(socket.SHUT_WR)
        data = sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b""


def test_the_openapi_document_is_served(server):
    status, body = exchange(server, http("GET", b"/openapi.json"))
    document = json.loads(body)
    assert status == 200 and document["openapi"].startswith("3.")
    assert {
        "/v1/lookup",
        "/v1/users/{user_id}",
        "/v1/users",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(document["paths"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
lookup_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.tuples(st.text(max_size=8), st.none() | st.integers()), max_size=5).map(
        lambda keys: json.dumps({"keys": keys}).encode()
    ),
)
segment = st.text(
    st.sampled_from(["a", "b", "/", "%", "2", "F", "f", "ü", "?", "&", "=", "#", " ", "\t"]),
    max_size=12,
)
raw_bytes = st.binary(max_size=12).map(
    lambda b: b.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"")
)
targets = st.one_of(
    st.builds(lambda s: b"/v1/users/" + s.encode("utf-8").replace(b" ", b"%20"), segment),
    st.builds(lambda s: b"/v1/users/" + s, raw_bytes),
    st.builds(lambda q: b"/v1/users?" + q, raw_bytes),
    st.builds(
        lambda name, value: b"/v1/users?" + name + b"=" + value,
        st.sampled_from([b"level", b"limit", b"at", b"x"]),
        st.sampled_from(
            [b"", b"1", b"-1", b"gold", b"%ff", b"1e3", b"+7", b"--1", b"0x10", b"\xc3\xbc"]
        ),
    ),
    st.builds(
        lambda value: b"/v1/users/a?at=" + value,
        st.sampled_from([b"", b"1", b"-5", b"%ff", b"99999999999999999999999", b"nan", b"\xff"]),
    ),
    st.sampled_from(
        [b"/v1/lookup", b"/healthz", b"/readyz", b"/metrics", b"/openapi.json", b"//", b"/"]
    ),
)
content_lengths = st.one_of(
    st.none(),
    st.sampled_from(
        [b"0", b"1", b"-1", b"abc", b" 2 ", b"99999999999999999999", b"", b"+3", b"3.0"]
    ),
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    target=targets,
    body=st.none() | lookup_bodies,
    content_length=content_lengths,
)
def test_generated_requests_never_get_a_5xx(server, method, target, body, content_length):
    if content_length is None:
        request = http(method, target, body)
    else:
        request = http(method, target, None, b"Content-Length: " + content_length + b"\r\n") + (
            body or b""
        )
    answer = exchange_or_closed(server, request)
    if answer is None:
        # Only a body announced and then cut short by the half-close may go unanswered, as in
        # test_a_body_cut_short_gets_a_400_or_a_closed_connection (a route reading the body).
        announced = content_length.strip() if content_length is not None else b""
        assert announced.isdigit() and int(announced) > len(body or b""), request
        return
    status, _ = answer
    assert 200 <= status < 500


def test_the_openapi_document_names_every_route_and_no_other():
    """Documented and served cannot drift apart: the document's operations are the routes."""
    from zoneinfo import ZoneInfo

    from clickstream_user_state.activity import ActivityBoard
    from clickstream_user_state.activity_api import build_activity_routes
    from clickstream_user_state.activity_live import LiveActivity
    from clickstream_user_state.activity_views import Views
    from clickstream_user_state.live_feed import LiveFeed
    from clickstream_user_state.openapi import openapi_document
    from clickstream_user_state.page import build_page_routes

    router = Router()
    store = UserStore()
    add_health_routes(router, live=lambda: True, ready=lambda: True, metrics=Metrics("t"))
    build_routes(router, store, lambda: True, Metrics("u"))
    views = Views(ActivityBoard(ZoneInfo("UTC"), 86_400_000), store)
    build_activity_routes(router, views, lambda: True, LiveActivity(views, LiveFeed()))
    build_page_routes(router)
    served = {
        (path, method.lower()) for path, methods in router.handlers.items() for method in methods
    }
    served |= {(path, "get") for path in router.streams}
    documented = {
        (path, method) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert documented == served
