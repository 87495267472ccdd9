"""The enricher's keep-alive HTTP connection against a socket server that answers with given
bytes: requests written whole and answers read whole on one connection, chunked bodies, a server
that closes, an answer cut short or not HTTP at all (each a `BrokenAnswer`, the next request on a
new connection). Its use against the real user-state is test_user_state_client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence

import pytest
from clickstream_enricher.http_connection import BrokenAnswer, KeepAliveConnection

pytestmark = pytest.mark.integration


def ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer:
    """Each connection it accepts answers the requests on it with the next script's replies, in
    order, then closes; what the requests were is kept, per connection."""

    def __init__(self, scripts: Sequence[Sequence[bytes]]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.requests: list[list[bytes]] = []
        self._thread = threading.Thread(target=self._serve, args=(list(scripts),), daemon=True)
        self._thread.start()

    def _serve(self, scripts: list[Sequence[bytes]]) -> None:
        for replies in scripts:
            conn, _ = self._listener.accept()
            seen: list[bytes] = []
            self.requests.append(seen)
            with conn:
                for reply in replies:
                    seen.append(_read_request(conn))
                    conn.sendall(reply)

    def close(self) -> None:
        self._thread.join(10)
        self._listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(4096)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def serve() -> Iterator[type[ScriptedServer]]:
    servers: list[ScriptedServer] = []

    class Started(ScriptedServer):
        def __init__(self, scripts: Sequence[Sequence[bytes]]) -> None:
            super().__init__(scripts)
            servers.append(self)

    yield Started
    for server in servers:
        server.close()


def test_requests_and_answers_share_one_connection(serve: type[ScriptedServer]) -> None:
    server = serve([[ok(b'{"a":1}'), ok(b"second")]])
    conn = KeepAliveConnection("127.0.0.1", server.port, timeout=10)
    conn.send("POST", "/v1/lookup", b'{"keys":[]}', "application/json")
    assert conn.receive() == (200, b'{"a":1}')
    conn.send("GET", "/readyz")
    assert conn.receive() == (200, b"second")
    conn.close()
    [[post, get]] = server.requests
    assert post == (
        b"POST /v1/lookup HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b'Content-Length: 11\r\n\r\n{"keys":[]}' % server.port
    )
    assert get == b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % server.port


def test_a_chunked_body_is_read_whole(serve: type[ScriptedServer]) -> None:
    chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"4\r\nnot \r\n6\r\nloaded\r\n0\r\n\r\n"
    server = serve([[chunked]])
    conn = KeepAliveConnection("127.0.0.1", server.port, timeout=10)
    conn.send("GET", "/readyz")
    assert conn.receive() == (503, b"not loaded")
    conn.close()


def test_an_answer_saying_close_makes_the_next_request_connect_again(
    serve: type[ScriptedServer],
) -> None:
    server = serve([[ok(b"1", "Connection: close")], [ok(b"2")]])
    conn = KeepAliveConnection("127.0.0.1", server.port, timeout=10)
    conn.send("GET", "/a")
    assert conn.receive() == (200, b"1")
    conn.send("GET", "/b")
    assert conn.receive() == (200, b"2")
    conn.close()
    assert [len(requests) for requests in server.requests] == [1, 1]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (ok(b"0123456789")[:-4], "closed before the answer was whole"),
        (b"", "closed before the answer was whole"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
    ],
    ids=["cut-short", "nothing", "not-http"],
)
def test_a_broken_answer_is_an_error_and_the_next_request_has_a_new_connection(
    serve: type[ScriptedServer], reply: bytes, reason: str
) -> None:
    server = serve([[reply], [ok(b"fine")]])
    conn = KeepAliveConnection("127.0.0.1", server.port, timeout=10)
    conn.send("GET", "/a")
    with pytest.raises(BrokenAnswer, match=reason):
        conn.receive()
    conn.send("GET", "/a")
    assert conn.receive() == (200, b"fine")
    conn.close()


def test_nothing_listening_is_an_os_error() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound, never listening: connections are refused
        conn = KeepAliveConnection("127.0.0.1", port, timeout=10)
        with pytest.raises(ConnectionRefusedError):
            conn.send("GET", "/readyz")
    with pytest.raises(BrokenAnswer, match="no request in flight"):
        conn.receive()
