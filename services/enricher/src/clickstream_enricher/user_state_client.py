"""HTTP adapter to user-state: one keep-alive connection, one request per batch of clicks.

user-state being away (restarting, or bootstrapping and answering 503) is not a reason to drop
clicks: the client waits and retries until it answers or the enricher is asked to stop.

`start` sends a lookup and leaves its answer in the socket until `result` reads it, so user-state
works on a batch read ahead while the enricher finishes the one before, with no thread: a worker
thread doing the same had to win the GIL back from the busy main thread after every socket read
(up to the 5 ms switch interval each time), which made the main thread wait for the answer
(a fifth of its time in the profile). The connection is `KeepAliveConnection`, not http.client,
whose request building and header parsing cost as much again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import msgspec
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger
from clickstream_common.lookup import Key, encode_request
from clickstream_common.metrics import Metrics
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from clickstream_enricher.directory import UserMatch
from clickstream_enricher.http_connection import KeepAliveConnection

log = get_logger(__name__)


class _Answers(msgspec.Struct, gc=False):
    """user-state's `LookupResponse` (clickstream_common.lookup), decoded straight into the
    enricher's terms: each result's `found` and `user` (its `beyond_history` is not needed)."""

    results: list[UserMatch]


_answers = msgspec.json.Decoder(_Answers)

_LOOKUP = "/v1/lookup"
_JSON = "application/json"


class UserStateUnavailable(RuntimeError):
    """Raised only when shutdown was requested while user-state could not be reached."""


class _NotAnswering(Exception):
    """user-state is away or bootstrapping (unreachable, 5xx, 503): worth waiting for."""


class UserStateClient:
    def __init__(
        self,
        base_url: str,
        shutdown: Shutdown,
        timeout: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        """`metrics`: where to show each batch lookup's round trip (retries included)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        self._prefix = parts.path.rstrip("/")
        self._shutdown = shutdown
        self._conn = KeepAliveConnection(parts.hostname, port, timeout=timeout, tls=https)
        # started, its answer not read yet: the connection's one request in flight
        self._sent: SentLookup | None = None
        self._metrics = metrics
        if metrics is not None:
            metrics.histogram(
                "lookup",
                "a batch lookup in user-state, sent to its answer read (for a batch read ahead,"
                " the previous batch's work is included)",
            )

    def _answer(self, method: str, path: str, body: bytes) -> bytes:
        """One attempt: the 200's body; `_NotAnswering` for what waiting may cure."""
        try:
            self._conn.send(method, self._prefix + path, body, _JSON)
        except OSError as exc:
            raise _NotAnswering(f"{type(exc).__name__}: {exc}") from exc
        return self._received(path)

    def _received(self, path: str) -> bytes:
        """The 200's body of the answer to the request for `path` on the connection;
        `_NotAnswering` for what waiting may cure, `RuntimeError` for a refusal (4xx)."""
        try:
            status, payload = self._conn.receive()
        except OSError as exc:
            raise _NotAnswering(f"{type(exc).__name__}: {exc}") from exc
        if status == 200:
            return payload
        problem = f"HTTP {status}: {payload[:200]!r}"
        if 400 <= status < 500:
            raise RuntimeError(f"user-state refused {path}: {problem}")
        raise _NotAnswering(problem)

    def _retrying(self, method: str, path: str, body: bytes = b"") -> bytes:
        """Retries until user-state answers (backing off 0.1 s to 2 s) or shutdown is asked."""
        problem = ""

        def note(attempt: RetryCallState) -> None:
            nonlocal problem
            problem = str(attempt.outcome.exception()) if attempt.outcome else ""
            if attempt.attempt_number == 1:
                log.warning("user-state not answering, retrying", problem=problem)

        def pause(seconds: float) -> None:
            if self._shutdown.wait(seconds):
                raise UserStateUnavailable(problem)

        retrying = Retrying(
            retry=retry_if_exception_type(_NotAnswering),
            wait=wait_exponential(multiplier=0.1, max=2.0),
            before_sleep=note,
            sleep=pause,
            reraise=True,
        )
        payload = retrying(self._answer, method, path, body)
        if retrying.statistics["attempt_number"] > 1:
            log.info("user-state answering again")
        return payload

    def wait_ready(self) -> None:
        """Block until user-state has loaded the users table.

        See docs/ARCHITECTURE.md § Semantics 2."""
        self._retrying("GET", "/readyz")

    def lookup(self, keys: Sequence[Key]) -> list[UserMatch]:
        return self.start(keys).result()

    def start(self, keys: Sequence[Key]) -> SentLookup:
        """Send the lookup now; its answer is read by `result`. One request at a time on the
        connection: the answer to the lookup started before is read first (by then it is
        usually waiting in the socket)."""
        if self._sent is not None:
            self._sent.result()
        body = encode_request(keys)
        sent = SentLookup(self, body)
        try:
            self._conn.send("POST", self._prefix + _LOOKUP, body, _JSON)
        except OSError:
            sent.unsent = True  # `result` asks again, with retries
        self._sent = sent
        return sent

    def _answer_to(self, sent: SentLookup) -> list[UserMatch]:
        if sent is self._sent:
            self._sent = None
        payload = None
        if not sent.unsent:
            with contextlib.suppress(_NotAnswering):  # asked again below, with retries
                payload = self._received(_LOOKUP)
        if payload is None:
            payload = self._retrying("POST", _LOOKUP, sent.body)
        matches = _answers.decode(payload).results
        if self._metrics is not None:
            self._metrics.observe("lookup", time.perf_counter() - sent.started)
        return matches

    def close(self) -> None:
        self._sent = None
        self._conn.close()


class SentLookup:
    """A lookup sent to user-state; `result` reads its answer, once."""

    __slots__ = ("_client", "_matches", "body", "started", "unsent")

    def __init__(self, client: UserStateClient, body: bytes) -> None:
        self._client = client
        self._matches: list[UserMatch] | None = None
        self.body = body
        self.started = time.perf_counter()
        self.unsent = False

    def result(self) -> list[UserMatch]:
        if self._matches is None:
            self._matches = self._client._answer_to(self)
        return self._matches
