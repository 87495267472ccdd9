"""The schema registry, over its Confluent-compatible REST API (Confluent Schema Registry, or
Apicurio's `/apis/ccompat/v7`), through `confluent_kafka.schema_registry`.

A registry that cannot be reached is never a property of a record: every call here waits and
retries until it answers (or the service stops), with `reachable` false meanwhile for readiness.
Only an answer ("no such schema id", "incompatible") is final.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, Protocol, TypeVar

import structlog
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from tenacity import Retrying, retry_if_exception_type, wait_exponential

from clickstream_common.avro.errors import (
    IncompatibleSchema,
    NotARegistry,
    RegistryStopped,
    RegistryUnavailable,
)
from clickstream_common.metrics import Metrics
from clickstream_common.settings import mask_url

log = structlog.get_logger("schema_registry")

T = TypeVar("T")

_UNAVAILABLE_STATUS = frozenset({-1, 408, 429, 500, 502, 503, 504})
# Confluent's (and Apicurio's) "schema not found"; the library's in-memory client says 40400. A
# bare 404 (no error code: a wrong URL, a proxy) is no answer about the schema.
_SCHEMA_NOT_FOUND = frozenset({40403, 40400})


# Re-registrations tried while the registry answers "already exists" for a schema it holds.
_SETTLE_ATTEMPTS = 30


def _still_settling(error: SchemaRegistryError) -> bool:
    return error.http_status_code == 409 and "already exists" in str(error.error_message)


class Stopping(Protocol):
    """A service's stop signal (`Shutdown`, or a `threading.Event`): waits end when it is set."""

    def wait(self, timeout: float | None = None) -> bool: ...


class SchemaRegistry:
    def __init__(
        self,
        url: str,
        stopping: Stopping,
        *,
        timeout_seconds: float = 5.0,
        metrics: Metrics | None = None,
        client: SchemaRegistryClient | None = None,
    ) -> None:
        # A timeout always: the client has none by default, and a registry that accepted the
        # connection but never answers would hang the consumer for good.
        self._client = client or SchemaRegistryClient(
            {"url": url, "timeout": timeout_seconds, "max.retries": 0}
        )
        self.url = mask_url(url)  # for logs and errors: a password in it stays out
        self._stopping = stopping
        self._metrics = metrics
        if metrics is not None:
            metrics.counter(
                "schema_registry_requests",
                "Requests to the schema registry: one per schema, never one per record",
            )
        self.reachable = True

    def schema_text(self, schema_id: int) -> str | None:
        """The schema registered under `schema_id`, or None when the registry has no such id."""
        try:
            schema = self._call(lambda: self._client.get_schema(schema_id))
        except SchemaRegistryError as exc:
            if exc.error_code in _SCHEMA_NOT_FOUND:
                return None
            raise
        return str(schema.schema_str)

    def check(self) -> None:
        """That the URL serves a registry's API, waiting while it cannot be reached: a wrong
        URL stops the service at start, where every record would otherwise look unknown."""
        try:
            self._call(self._client.get_subjects, bare_404_waits=False)
        except SchemaRegistryError as exc:
            raise NotARegistry(
                f"SCHEMA_REGISTRY_URL={self.url} does not serve a schema registry API "
                f"(GET subjects: HTTP {exc.http_status_code}); for Apicurio it ends in "
                "/apis/ccompat/v7"
            ) from None

    def register(self, subject: str, text: str, compatibility: str = "BACKWARD") -> int:
        """Register `text` under `subject` (a no-op when it is already there) and set the
        subject's compatibility rule. Raises `IncompatibleSchema` if the registry refuses it."""
        schema = Schema(text, "AVRO")
        for attempt in range(1, _SETTLE_ATTEMPTS + 1):
            try:
                schema_id = self._call(lambda: self._client.register_schema(subject, schema))
                break
            except SchemaRegistryError as exc:
                if not _still_settling(exc) or attempt == _SETTLE_ATTEMPTS:
                    self._refused(subject, compatibility, exc)
                # Apicurio (KafkaSQL) just restarted and still replaying its journal refuses a
                # schema it holds with "already exists"; once settled it answers with the id.
                log.info("schema registry still settling, registering again", subject=subject)
                self._pause(1.0)
        self._call(lambda: self._client.set_compatibility(subject, compatibility))
        return int(schema_id)

    def _refused(self, subject: str, compatibility: str, exc: SchemaRegistryError) -> NoReturn:
        if exc.http_status_code in (409, 422):
            raise IncompatibleSchema(
                f"the schema registry at {self.url} refused the schema for subject "
                f"{subject}: {exc.error_message} (HTTP {exc.http_status_code}); a new "
                f"version must be {compatibility} compatible with the registered ones"
            ) from None
        raise exc

    def _call(self, request: Callable[[], T], *, bare_404_waits: bool = True) -> T:
        """`request`'s answer, waiting for as long as the registry cannot be reached."""
        retrying = Retrying(
            retry=retry_if_exception_type(RegistryUnavailable),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=lambda _: self._stopping.wait(0),
            sleep=self._pause,
            before_sleep=self._waiting,
            reraise=True,
        )
        try:
            result: T = retrying(self._attempt, request, bare_404_waits)
        except RegistryUnavailable as exc:
            raise RegistryStopped(f"stopped while waiting for the schema registry: {exc}") from None
        if not self.reachable:
            log.info("schema registry answers again", url=self.url)
        self.reachable = True
        return result

    def _attempt(self, request: Callable[[], T], bare_404_waits: bool) -> T:
        if self._metrics is not None:
            self._metrics.inc("schema_registry_requests")
        try:
            return request()
        except SchemaRegistryError as exc:
            if exc.http_status_code in _UNAVAILABLE_STATUS or (
                bare_404_waits
                and exc.http_status_code == 404
                and exc.error_code not in _SCHEMA_NOT_FOUND
            ):
                raise RegistryUnavailable(
                    f"HTTP {exc.http_status_code}: {exc.error_message}"
                ) from exc
            raise
        except (OSError, RuntimeError) as exc:
            raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # httpx's transport errors: no import of httpx for them alone
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise RegistryUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _waiting(self, state: object) -> None:
        if self.reachable:
            log.warning("waiting for the schema registry", url=self.url)
        self.reachable = False
