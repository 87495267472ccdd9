"""One keep-alive HTTP/1.1 connection for a client's small requests, its answers parsed by llhttp.

http.client built each request through putrequest/putheader/endheaders and parsed each answer's
headers with email.parser: a fifth of the enricher's main thread at 5,000 clicks/s, for one
request shape. Here a request is one join and one sendall, and the answer is parsed by httptools
(llhttp, the parser user-state's uvicorn runs on). Sending and reading are separate calls, so a
request can be left in flight while the caller works (one at a time: no pipelining).
"""

from __future__ import annotations

import socket
import ssl

import httptools

_READ = 65_536


class BrokenAnswer(ConnectionError):
    """The connection ended, or the bytes that came were not HTTP, before an answer was whole;
    the connection is closed, and a new one is made for the next request."""


class _Answers:
    """The answers on one connection as the parser's callbacks see them, one at a time (llhttp
    parses one message after another). Whether the connection stays open is read when the
    headers are complete: llhttp has forgotten it once the message is."""

    __slots__ = ("complete", "keep_alive", "parser", "parts", "status")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.status = 0
        self.parser = httptools.HttpResponseParser(self)

    def next(self) -> None:
        self.parts = []
        self.complete = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class KeepAliveConnection:
    """Connects on the first request and again after any failure; `timeout` bounds the connect
    and each socket read or write. Errors are `OSError`s (`BrokenAnswer` among them)."""

    def __init__(self, host: str, port: int, *, timeout: float, tls: bool = False) -> None:
        self._address = (host, port)
        self._timeout = timeout
        self._tls = ssl.create_default_context() if tls else None
        authority = f"[{host}]" if ":" in host else host
        self._host_line = f"Host: {authority}:{port}\r\n"
        self._socket: socket.socket | None = None
        self._answers = _Answers()

    def send(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> None:
        """Write a whole request; its answer is read by `receive`."""
        head = f"{method} {path} HTTP/1.1\r\n{self._host_line}"
        if body or method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("latin-1") + body
        try:
            self._connected().sendall(request)
        except OSError:
            self.close()
            raise

    def receive(self) -> tuple[int, bytes]:
        """The status and body of the answer to the request sent last."""
        sock = self._socket
        if sock is None:
            raise BrokenAnswer("no request in flight: the connection was closed")
        answer = self._answers
        answer.next()
        try:
            while not answer.complete:
                data = sock.recv(_READ)
                if not data:
                    raise BrokenAnswer("the connection closed before the answer was whole")
                answer.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            raise BrokenAnswer(f"not an HTTP answer: {exc}") from exc
        except OSError:
            self.close()
            raise
        if not answer.keep_alive:
            self.close()
        return answer.status, b"".join(answer.parts)

    def _connected(self) -> socket.socket:
        if self._socket is None:
            sock = socket.create_connection(self._address, timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
            self._socket = sock
            self._answers = _Answers()
        return self._socket

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
