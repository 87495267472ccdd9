"""RabbitMQ publisher with pipelined publisher confirms.

The rabbit-bridge may commit a Kafka offset only once every message up to it is confirmed by
RabbitMQ and not returned (DESIGN.md, Semantics 6). Waiting for each confirm in turn would cost one
network round trip per message, so a whole batch is published at once (at most `max_in_flight`
unconfirmed) and confirms are mapped back to batch indices as they arrive. Several batches may be
in flight at once (`submit`), so a caller can publish the next one while the last is confirmed.

pika is not thread-safe, so every connection belongs to its own I/O thread running a
`SelectConnection`. Other threads never touch pika objects: they hand work over with
`ioloop.add_callback_threadsafe` and wait on a `threading.Event`.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import pika
import pika.exceptions
import pika.spec

__all__ = [
    "OutboundMessage",
    "PendingPublish",
    "PublishOutcome",
    "RabbitPublisher",
    "RabbitUnavailable",
    "Topology",
    "declare_topology",
    "mask_url",
]

_log = logging.getLogger(__name__)

_PERSISTENT = 2
_CONTENT_TYPE = "application/json"
# Messages handed to pika per I/O-loop turn: keeps the loop reading confirms and writing frames
# while a large batch is being published.
_PUBLISH_CHUNK = 500
# Reconnect backoff: doubling from 0.5 s, but never more than 5 s between tries, so a broker
# back after a restart (10-20 s here) is found within seconds, not half a minute.
_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 5.0
_JOIN_TIMEOUT = 10.0

CA_FILE_VARIABLE = "RABBITMQ_CA_FILE"

REASON_CONNECTION_LOST = "connection lost"
REASON_CONFIRM_TIMEOUT = "confirm timeout"
REASON_NACKED = "nacked"


class RabbitUnavailable(Exception):
    """RabbitMQ cannot be reached or refused the connection or topology (password masked)."""


@dataclass(frozen=True)
class Topology:
    """Where messages go: a durable topic exchange and one durable queue bound to it."""

    exchange: str = "vip-actions"
    queue: str = "vip-actions"
    binding_key: str = "#"
    queue_type: Literal["classic", "quorum"] = "quorum"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to publish; `message_id` lets consumers deduplicate redeliveries."""

    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PublishOutcome:
    """How a batch settled; any failed index means its source offset must not be committed."""

    confirmed: int
    failed: tuple[tuple[int, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failed


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***`, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return "<unparseable RabbitMQ URL>"


def _secrets_of(url: str) -> tuple[str, ...]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    if not password:
        return ()
    return tuple({password, unquote(password)})


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _root_cause(exc: BaseException) -> BaseException:
    """Unwrap pika's connection-workflow wrappers down to the error that explains the failure."""
    for _ in range(8):
        nested = getattr(exc, "exceptions", None)
        inner: object = None
        if isinstance(nested, list | tuple) and nested:
            inner = nested[-1]
        elif isinstance(getattr(exc, "exception", None), BaseException):
            inner = exc.exception  # type: ignore[attr-defined]
        elif len(exc.args) == 1:
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    root = _root_cause(exc)
    name = type(root).__name__
    if type(root).__module__.startswith("pika"):
        text = repr(root)  # pika's exceptions carry their detail in __repr__, not __str__
    else:
        text = f"{name}: {root}" if str(root).strip() else name
    return _scrub(text, secrets)


def _parameters(url: str, connection_name: str) -> pika.URLParameters:
    """Parse the URL without ever echoing it back unmasked.

    An amqps:// URL gets pika's default TLS context (system CAs, or SSL_CERT_FILE / SSL_CERT_DIR;
    host name checked against the URL's host), which also trusts the CA in RABBITMQ_CA_FILE if
    that is set, for a broker with a private CA.
    """
    try:
        params = pika.URLParameters(url)
    except Exception as exc:
        raise ValueError(
            f"invalid RabbitMQ URL {mask_url(url)}: {_describe(exc, _secrets_of(url))}"
        ) from None
    ca_file = os.environ.get(CA_FILE_VARIABLE, "").strip()
    if params.ssl_options is not None and ca_file:
        try:
            params.ssl_options.context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{CA_FILE_VARIABLE}={ca_file!r} cannot be loaded: {exc}") from None
    params.client_properties = {
        **(params.client_properties or {}),
        "connection_name": connection_name,
    }
    return params


def _queue_arguments(topology: Topology) -> dict[str, Any]:
    return {"x-queue-type": topology.queue_type}


def declare_topology(url: str, topology: Topology) -> None:
    """Declare exchange, queue and binding with a short-lived blocking connection."""
    secrets = _secrets_of(url)
    params = _parameters(url, "clickstream-declare-topology")
    try:
        connection = pika.BlockingConnection(params)
    except Exception as exc:
        raise RabbitUnavailable(
            f"cannot connect to RabbitMQ at {mask_url(url)}: {_describe(exc, secrets)}"
        ) from None
    try:
        channel = connection.channel()
        channel.exchange_declare(topology.exchange, exchange_type="topic", durable=True)
        channel.queue_declare(topology.queue, durable=True, arguments=_queue_arguments(topology))
        channel.queue_bind(topology.queue, topology.exchange, routing_key=topology.binding_key)
    except Exception as exc:
        raise RabbitUnavailable(
            f"declaring {topology} on {mask_url(url)} failed: {_describe(exc, secrets)}"
        ) from None
    finally:
        if connection.is_open:
            connection.close()


class _Batch:
    """Settlement state of one publish_batch call, shared by the caller and the I/O thread."""

    def __init__(self, messages: Sequence[OutboundMessage]) -> None:
        self.messages = messages
        self.published = 0  # I/O thread only: how many are handed to pika so far
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._settled = bytearray(len(messages))
        self._remaining = len(messages)
        self._confirmed = 0
        self._failed: dict[int, str] = {}
        if not messages:
            self.done.set()  # nothing to wait for

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def settle(self, index: int, failure: str | None) -> None:
        with self._lock:
            if self._settled[index] or self.done.is_set():
                return
            self._settled[index] = 1
            self._remaining -= 1
            if failure is None:
                self._confirmed += 1
            else:
                self._failed[index] = failure
            if self._remaining == 0:
                self.done.set()

    def fail_rest(self, reason: str) -> None:
        """Fail every index not settled yet; later confirms for this batch are ignored."""
        with self._lock:
            if self.done.is_set():
                return
            for index, settled in enumerate(self._settled):
                if not settled:
                    self._failed[index] = reason
            self._remaining = 0
            self.done.set()

    def outcome(self) -> PublishOutcome:
        with self._lock:
            return PublishOutcome(self._confirmed, tuple(sorted(self._failed.items())))


@dataclass(slots=True)
class _Pending:
    batch: _Batch
    index: int
    key: tuple[str, str]
    returned: str | None = None


class _Session:
    """One connection and its confirm-mode channel, owned by a dedicated I/O thread.

    Everything prefixed `_io_` or named `_on_*` runs on that thread only. The caller-facing
    methods (`start`, `submit`, `shutdown`, `join`) only touch pika through
    `add_callback_threadsafe`.
    """

    def __init__(
        self,
        params: pika.URLParameters,
        topology: Topology,
        max_in_flight: int,
        secrets: tuple[str, ...],
        thread_name: str,
    ) -> None:
        self._params = params
        self._topology = topology
        self._max_in_flight = max_in_flight
        self._secrets = secrets
        self.ready = threading.Event()
        self.error: str | None = None
        self.usable = False
        self._loop_created = threading.Event()
        self._lock = threading.Lock()  # guards _dead and _batches between caller and I/O thread
        self._dead = False
        self._batches: deque[_Batch] = deque()  # submitted and not detached, in order
        self._thread = threading.Thread(target=self._io_run, name=thread_name, daemon=True)
        # I/O-thread state.
        self._connection: Any = None
        self._ioloop: Any = None
        self._channel: Any = None
        self._closing_by_us = False
        self._next_tag = 0
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._by_key: dict[tuple[str, str], deque[int]] = {}
        self._pump_scheduled = False

    # ---- caller side -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: _Batch) -> bool:
        """Hand `batch` to the I/O thread; if the session dies first the batch is failed."""
        with self._lock:
            if self._dead:
                return False
            self._batches.append(batch)
        if not self._call(lambda: self._io_begin(batch)):
            batch.fail_rest(REASON_CONNECTION_LOST)
        return True

    def detach(self, batch: _Batch) -> None:
        with self._lock:
            if batch in self._batches:
                self._batches.remove(batch)

    def shutdown(self) -> None:
        """Ask the I/O thread to close the connection (also aborts one still opening)."""
        self.usable = False
        if self._loop_created.wait(_JOIN_TIMEOUT):
            self._call(self._io_close)

    def join(self, timeout: float = _JOIN_TIMEOUT) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _call(self, callback: Callable[[], None]) -> bool:
        loop = self._ioloop
        if loop is None or self._dead:
            return False
        try:
            loop.add_callback_threadsafe(callback)
        except Exception:  # loop already closed: the session is gone
            return False
        return True

    # ---- I/O thread --------------------------------------------------------------------------

    def _io_run(self) -> None:
        try:
            self._connection = pika.SelectConnection(
                self._params,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_open_error,
                on_close_callback=self._on_connection_closed,
            )
            self._ioloop = self._connection.ioloop
            self._loop_created.set()
            self._ioloop.start()
        except Exception as exc:
            _log.exception("rabbitmq I/O loop failed")
            if self.error is None:
                self.error = _describe(exc, self._secrets)
        finally:
            self.usable = False
            with self._lock:
                self._dead = True
            self._io_fail_all(REASON_CONNECTION_LOST)
            if self.error is None and not self.ready.is_set():
                self.error = "connection closed during start-up"
            self.ready.set()
            self._loop_created.set()
            if self._ioloop is not None:
                try:
                    self._ioloop.close()
                except Exception:
                    _log.debug("closing the rabbitmq I/O loop failed", exc_info=True)

    def _on_connection_open(self, connection: Any) -> None:
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, _connection: Any, exc: BaseException) -> None:
        self.error = _describe(exc, self._secrets)
        self.ready.set()
        self._ioloop.stop()

    def _on_connection_closed(self, _connection: Any, reason: BaseException) -> None:
        self.usable = False
        if not self.ready.is_set():
            self.error = _describe(reason, self._secrets)
            self.ready.set()
        elif not self._closing_by_us:
            _log.warning("rabbitmq connection lost: %s", _describe(reason, self._secrets))
        self._io_fail_all(REASON_CONNECTION_LOST)
        self._ioloop.stop()

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        _log.warning("rabbitmq blocked publishing: %s", getattr(frame.method, "reason", "?"))

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        _log.info("rabbitmq unblocked publishing")

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm, callback=self._on_confirm_select_ok)

    def _on_confirm_select_ok(self, _frame: Any) -> None:
        t = self._topology
        self._channel.exchange_declare(
            exchange=t.exchange,
            exchange_type="topic",
            durable=True,
            callback=self._on_exchange_ok,
        )

    def _on_exchange_ok(self, _frame: Any) -> None:
        t = self._topology
        self._channel.queue_declare(
            queue=t.queue,
            durable=True,
            arguments=_queue_arguments(t),
            callback=self._on_queue_ok,
        )

    def _on_queue_ok(self, _frame: Any) -> None:
        t = self._topology
        self._channel.queue_bind(
            queue=t.queue,
            exchange=t.exchange,
            routing_key=t.binding_key,
            callback=self._on_bind_ok,
        )

    def _on_bind_ok(self, _frame: Any) -> None:
        self.usable = True
        self.ready.set()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        self.usable = False
        if isinstance(reason, pika.exceptions.ChannelClosedByBroker):
            failure = f"channel closed by broker: {reason.reply_code} {reason.reply_text}"
            failure = _scrub(failure, self._secrets)
            if not self.ready.is_set():
                self.error = f"declaring {self._topology} failed: {failure}"
                self.ready.set()
            else:
                _log.warning("rabbitmq %s", failure)
        else:
            failure = REASON_CONNECTION_LOST
        self._io_fail_all(failure)
        # No channel means no confirms: drop the connection so the next batch starts afresh.
        self._io_close()

    def _io_close(self) -> None:
        self._closing_by_us = True
        self.usable = False
        connection = self._connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            connection.close()

    def _io_fail_all(self, reason: str) -> None:
        for entry in self._pending.values():
            entry.batch.settle(entry.index, reason)
        self._pending.clear()
        self._by_key.clear()
        with self._lock:
            batches = list(self._batches)
        for batch in batches:
            batch.fail_rest(reason)  # including messages not published yet

    def _io_begin(self, batch: _Batch) -> None:
        if batch.finished:
            return
        if not self.usable:
            batch.fail_rest(REASON_CONNECTION_LOST)
            return
        self._io_pump()

    def _io_unpublished(self) -> _Batch | None:
        """The oldest batch with messages not handed to pika yet: batches go out in order."""
        with self._lock:
            while self._batches and self._batches[0].finished:
                self._batches.popleft()  # settled; its caller's detach is then a no-op
            for batch in self._batches:
                if not batch.finished and batch.published < len(batch.messages):
                    return batch
        return None

    def _io_schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self._ioloop.call_later(0, self._io_pump)

    def _io_pump(self) -> None:
        """Publish the next chunk of the oldest unpublished batch, within the in-flight budget."""
        self._pump_scheduled = False
        batch = self._io_unpublished()
        if batch is None or not self.usable:
            return
        messages = batch.messages
        room = min(_PUBLISH_CHUNK, self._max_in_flight - len(self._pending))
        end = min(len(messages), batch.published + max(room, 0))
        exchange = self._topology.exchange
        publish = self._channel.basic_publish
        for index in range(batch.published, end):
            message = messages[index]
            properties = pika.BasicProperties(
                content_type=_CONTENT_TYPE,
                delivery_mode=_PERSISTENT,
                message_id=message.message_id,
                headers=dict(message.headers) if message.headers else None,
            )
            try:
                publish(exchange, message.routing_key, message.body, properties, mandatory=True)
            except Exception as exc:
                _log.warning("rabbitmq publish failed: %s", _describe(exc, self._secrets))
                batch.published = index
                self._io_fail_all(REASON_CONNECTION_LOST)
                self._io_close()
                return
            self._next_tag += 1
            key = (message.routing_key, message.message_id)
            self._pending[self._next_tag] = _Pending(batch, index, key)
            tags = self._by_key.get(key)
            if tags is None:
                self._by_key[key] = deque((self._next_tag,))
            else:
                tags.append(self._next_tag)
        batch.published = end
        if len(self._pending) < self._max_in_flight and self._io_unpublished() is not None:
            self._io_schedule_pump()  # let the loop write and read confirms before the next chunk

    def _on_return(self, _channel: Any, method: Any, properties: Any, _body: bytes) -> None:
        # basic.return precedes the confirm of the same message and returns come in publish
        # order, so the earliest unreturned in-flight message with this key is the one.
        tags = self._by_key.get((method.routing_key, properties.message_id))
        reason = f"returned: {method.reply_code} {method.reply_text}"
        for tag in tags or ():
            entry = self._pending[tag]
            if entry.returned is None:
                entry.returned = reason
                return
        _log.warning("rabbitmq returned a message that is not in flight (%s)", reason)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nacked = isinstance(method, pika.spec.Basic.Nack)
        tag: int = method.delivery_tag
        if method.multiple:
            while self._pending and next(iter(self._pending)) <= tag:
                self._io_settle(*self._pending.popitem(last=False), nacked)
        else:
            entry = self._pending.pop(tag, None)
            if entry is not None:
                self._io_settle(tag, entry, nacked)
        if len(self._pending) < self._max_in_flight and self._io_unpublished() is not None:
            self._io_schedule_pump()

    def _io_settle(self, tag: int, entry: _Pending, nacked: bool) -> None:
        tags = self._by_key[entry.key]
        if tags[0] == tag:
            tags.popleft()
        else:
            tags.remove(tag)
        if not tags:
            del self._by_key[entry.key]
        failure = REASON_NACKED if nacked else entry.returned
        entry.batch.settle(entry.index, failure)


class PendingPublish:
    """A submitted batch: `done` once every message is confirmed or failed, `wait` for how."""

    def __init__(
        self,
        publisher: RabbitPublisher,
        batch: _Batch,
        session: _Session | None,
        deadline: float,
    ) -> None:
        self._publisher = publisher
        self._batch = batch
        self._session = session
        self._deadline = deadline
        self._outcome: PublishOutcome | None = None

    @property
    def done(self) -> bool:
        return self._batch.finished

    def wait(self) -> PublishOutcome:
        """Block until settled, or until the deadline: then the unsettled fail with "confirm
        timeout" and the connection is recycled, so late confirms cannot leak anywhere."""
        if self._outcome is not None:
            return self._outcome
        batch, session = self._batch, self._session
        if not batch.done.wait(max(0.0, self._deadline - time.monotonic())):
            batch.fail_rest(REASON_CONFIRM_TIMEOUT)
            if session is not None:
                session.shutdown()
        if session is not None:
            session.detach(batch)
        self._outcome = self._publisher._report(batch)
        return self._outcome


class RabbitPublisher:
    """Publishes batches with pipelined confirms and reports, per index, what did not make it.

    Thread-safe: batches from several threads are published one after another, and a caller
    may have several in flight (`submit`). A lost
    connection fails the unsettled messages and is re-established, with backoff, by the next
    `publish_batch`.
    """

    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        connection_name: str = "rabbit-bridge",
        max_in_flight: int = 10_000,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._params = _parameters(url, connection_name)
        self._masked_url = mask_url(url)
        self._secrets = _secrets_of(url)
        self._topology = topology
        self._connection_name = connection_name
        self._max_in_flight = max_in_flight
        self._lock = threading.Lock()  # one batch (or start/close) at a time
        self._closing = threading.Event()
        self._closed = False
        self._started = False
        self._session: _Session | None = None
        self._backoff = 0.0
        self._next_attempt = 0.0

    @property
    def healthy(self) -> bool:
        """Connected, topology declared and channel in confirm mode."""
        session = self._session
        return not self._closed and session is not None and session.usable

    def start(self, timeout: float = 30.0) -> None:
        """Connect and declare the topology, so a broken broker or config fails at start-up."""
        with self._lock:
            if self._closed:
                raise RuntimeError("RabbitPublisher is closed")
            if self._session is None or not self._session.usable:
                self._replace_session(self._connect(timeout))
            self._started = True

    def publish_batch(
        self, messages: Sequence[OutboundMessage], timeout: float = 30.0
    ) -> PublishOutcome:
        """Publish all of `messages` and block until each is confirmed or failed.

        Never waits longer than about `timeout`: whatever is unsettled by then fails with
        "confirm timeout" and the connection is recycled so late confirms cannot leak into a
        later batch.
        """
        return self.submit(messages, timeout).wait()

    def submit(self, messages: Sequence[OutboundMessage], timeout: float = 30.0) -> PendingPublish:
        """Start publishing `messages` and return at once; `wait` on the result for the outcome.

        Batches submitted one after another are published in that order and may be in flight
        together; each settles on its own. `timeout` counts from now, as for `publish_batch`.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if not self._started:
                raise RuntimeError("RabbitPublisher.start() was not called")
            if self._closed:
                raise RuntimeError("RabbitPublisher is closed")
            batch = _Batch(messages)
            if not messages:
                return PendingPublish(self, batch, None, deadline)
            try:
                session = self._ensure_session(deadline)
            except RabbitUnavailable as exc:
                batch.fail_rest(f"{REASON_CONNECTION_LOST}: {exc}")
                return PendingPublish(self, batch, None, deadline)
            if not session.submit(batch):
                batch.fail_rest(REASON_CONNECTION_LOST)
            return PendingPublish(self, batch, session, deadline)

    def close(self) -> None:
        """Close the connection, failing whatever is still unconfirmed. Idempotent."""
        self._closing.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session, self._session = self._session, None
        if session is not None:
            session.shutdown()
            session.join()
            _log.info("rabbitmq publisher %s closed", self._connection_name)

    # ---- internals ---------------------------------------------------------------------------

    def _report(self, batch: _Batch) -> PublishOutcome:
        outcome = batch.outcome()
        if outcome.failed:
            _log.warning(
                "rabbitmq batch not fully confirmed: %d confirmed, %d failed (first: %s)",
                outcome.confirmed,
                len(outcome.failed),
                outcome.failed[0][1],
            )
        return outcome

    def _connect(self, timeout: float) -> _Session:
        session = _Session(
            self._params,
            self._topology,
            self._max_in_flight,
            self._secrets,
            thread_name=f"rabbit-io-{self._connection_name}",
        )
        session.start()
        if not session.ready.wait(max(0.0, timeout)):
            session.shutdown()  # aborts the opening; the daemon thread ends on its own
            raise RabbitUnavailable(f"RabbitMQ at {self._masked_url} not ready within {timeout:g}s")
        if session.error is not None or not session.usable:
            session.join()
            reason = session.error or "connection closed during start-up"
            raise RabbitUnavailable(f"cannot use RabbitMQ at {self._masked_url}: {reason}")
        _log.info(
            "rabbitmq publisher connected to %s (exchange=%s queue=%s type=%s)",
            self._masked_url,
            self._topology.exchange,
            self._topology.queue,
            self._topology.queue_type,
        )
        return session

    def _replace_session(self, session: _Session | None) -> None:
        # The old session's batch is already settled, so it is not joined: a stalled broker
        # must not hold up the reconnect.
        old, self._session = self._session, session
        if old is not None:
            old.shutdown()

    def _ensure_session(self, deadline: float) -> _Session:
        """The current session, or a new one tried with exponential backoff until `deadline`."""
        session = self._session
        if session is not None and session.usable:
            return session
        self._replace_session(None)
        while True:
            now = time.monotonic()
            if self._closing.is_set():
                raise RabbitUnavailable("publisher is closing")
            if self._next_attempt > deadline:
                raise RabbitUnavailable(
                    f"RabbitMQ at {self._masked_url} unavailable; "
                    f"next reconnect in {self._next_attempt - now:.1f}s"
                )
            if self._next_attempt > now:
                self._closing.wait(self._next_attempt - now)
                continue
            try:
                session = self._connect(deadline - now)
            except RabbitUnavailable as exc:
                self._backoff = min(_BACKOFF_MAX, max(_BACKOFF_MIN, self._backoff * 2))
                self._next_attempt = time.monotonic() + self._backoff * random.uniform(0.8, 1.2)
                _log.warning("rabbitmq reconnect failed: %s", exc)
                if time.monotonic() >= deadline:
                    raise
                continue
            self._backoff = 0.0
            self._next_attempt = 0.0
            self._session = session
            return session
