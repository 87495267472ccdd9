"""HTTP adapter to user-state: one keep-alive connection, one request per batch of clicks.

user-state being away (restarting, or bootstrapping and answering 503) is not a reason to drop
clicks: the client waits and retries until it answers or the enricher is asked to stop.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from clickstream_common.contracts import User, decode_json, encode_json
from clickstream_common.lifecycle import Shutdown
from clickstream_common.logging import get_logger

from clickstream_enricher.directory import UserMatch

log = get_logger(__name__)

_UNKNOWN = UserMatch("unknown")
_ABSENT = UserMatch("absent")


class UserStateUnavailable(RuntimeError):
    """Raised only when shutdown was requested while user-state could not be reached."""


class UserStateClient:
    def __init__(self, base_url: str, shutdown: Shutdown, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._shutdown = shutdown
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, self._prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._conn = None
            raise

    def _retrying(self, method: str, path: str, body: bytes | None = None) -> bytes:
        delay = 0.1
        waiting_since: float | None = None
        while True:
            try:
                status, payload = self._request(method, path, body)
                if status == 200:
                    if waiting_since is not None:
                        log.info("user-state answering again")
                    return payload
                problem = f"HTTP {status}: {payload[:200]!r}"
                if 400 <= status < 500:
                    raise RuntimeError(f"user-state refused {path}: {problem}")
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.warning("user-state not answering, retrying", problem=problem)
            if self._shutdown.wait(delay):
                raise UserStateUnavailable(problem)
            delay = min(delay * 2, 2.0)

    def wait_ready(self) -> None:
        """Block until user-state has loaded the users table (DESIGN § Semantics 2)."""
        self._retrying("GET", "/readyz")

    def lookup(self, keys: Sequence[tuple[str, int | None]]) -> list[UserMatch]:
        body = encode_json({"keys": keys})
        payload: Any = decode_json(self._retrying("POST", "/v1/lookup", body))
        return [_match(result) for result in payload["results"]]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _match(result: dict[str, Any]) -> UserMatch:
    found = result["found"]
    if found == "found":
        user = result["user"]
        return UserMatch("found", User(user["user_id"], user["name"], user["level"]))
    return _UNKNOWN if found == "unknown" else _ABSENT
