"""One RabbitMQ connection and its confirm-mode channel, driven by a dedicated I/O thread.

pika is not thread-safe, so every connection belongs to its own I/O thread running a
`SelectConnection`. Other threads never touch pika objects: they hand work over with
`ioloop.add_callback_threadsafe` and wait on a `threading.Event`.

A session is one-shot: once its connection or channel is lost it fails whatever it still holds
and ends; the publisher replaces it with a new one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pika.spec

from clickstream_common.logging import get_logger
from clickstream_common.rabbit.confirms import REASON_CONNECTION_LOST, REASON_NACKED, Batch
from clickstream_common.rabbit.connection import describe, is_refusal, scrub
from clickstream_common.rabbit.topology import Topology, queue_arguments

log = get_logger(__name__)

_PERSISTENT = 2
# Messages handed to pika per I/O-loop turn: keeps the loop reading confirms and writing frames
# while a large batch is being published.
_PUBLISH_CHUNK = 500
_JOIN_TIMEOUT = 10.0


class _JoinedWritesConnection(pika.SelectConnection):  # type: ignore[misc]
    """pika hands every frame to its transport as a buffer of its own, and the transport sends
    each with a `send()` of its own: three system calls a message (method, header, body), each
    giving the GIL up and taking it back, a quarter of the I/O thread's time in a profile at
    5,000 clicks/s. Here a message's frames are one buffer, and inside `joined()` (a chunk of
    publishes) all of them are: one write for the chunk. The byte and frame counts pika keeps
    (heartbeats read them) stay exact.

    Overrides pika's `_output_marshaled_frames` (pika 1.x, pinned in uv.lock); the bridge's
    integration tests run through it against the real broker.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held: list[bytes] | None = None
        super().__init__(*args, **kwargs)

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        for frame in marshaled_frames:
            self.bytes_sent += len(frame)
            self.frames_sent += 1
        if self._held is not None:
            self._held.extend(marshaled_frames)
        else:
            self._adapter_emit_data(b"".join(marshaled_frames))

    @contextmanager
    def joined(self) -> Iterator[None]:
        """Frames output inside are written at once on leaving; if it raises they are dropped,
        as the session then fails the messages and closes the connection anyway."""
        self._held = []
        try:
            yield
            held = self._held
        finally:
            self._held = None
        if held:
            self._adapter_emit_data(b"".join(held))


@dataclass(slots=True)
class _Pending:
    batch: Batch
    index: int
    key: tuple[str, str]
    returned: str | None = None


class Session:
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
        # the broker said no (credentials, or a topology clashing with what it holds): waiting
        # will not change that, unlike a broker that is not up yet
        self.refused = False
        self.usable = False
        self._loop_created = threading.Event()
        self._lock = threading.Lock()  # guards _dead and _batches between caller and I/O thread
        self._dead = False
        self._batches: deque[Batch] = deque()  # submitted and not detached, in order
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

    def submit(self, batch: Batch) -> bool:
        """Hand `batch` to the I/O thread; if the session dies first the batch is failed."""
        with self._lock:
            if self._dead:
                return False
            self._batches.append(batch)
        if not self._call(lambda: self._io_begin(batch)):
            batch.fail_rest(REASON_CONNECTION_LOST)
        return True

    def detach(self, batch: Batch) -> None:
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
            self._connection = _JoinedWritesConnection(
                self._params,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_open_error,
                on_close_callback=self._on_connection_closed,
            )
            self._ioloop = self._connection.ioloop
            self._loop_created.set()
            self._ioloop.start()
        except Exception as exc:
            log.exception("rabbitmq I/O loop failed")
            if self.error is None:
                self.error = describe(exc, self._secrets)
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
                    log.debug("closing the rabbitmq I/O loop failed", exc_info=True)

    def _on_connection_open(self, connection: Any) -> None:
        connection.add_on_connection_blocked_callback(self._on_blocked)
        connection.add_on_connection_unblocked_callback(self._on_unblocked)
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, _connection: Any, exc: BaseException) -> None:
        self.error = describe(exc, self._secrets)
        self.refused = is_refusal(exc)
        self.ready.set()
        self._ioloop.stop()

    def _on_connection_closed(self, _connection: Any, reason: BaseException) -> None:
        self.usable = False
        if not self.ready.is_set():
            self.error = describe(reason, self._secrets)
            self.refused = is_refusal(reason)
            self.ready.set()
        elif not self._closing_by_us:
            log.warning("rabbitmq connection lost", reason=describe(reason, self._secrets))
        self._io_fail_all(REASON_CONNECTION_LOST)
        self._ioloop.stop()

    def _on_blocked(self, _connection: Any, frame: Any) -> None:
        log.warning("rabbitmq blocked publishing", reason=getattr(frame.method, "reason", "?"))

    def _on_unblocked(self, _connection: Any, _frame: Any) -> None:
        log.info("rabbitmq unblocked publishing")

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
            arguments=queue_arguments(t),
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
            failure = scrub(failure, self._secrets)
            if not self.ready.is_set():
                self.error = f"declaring {self._topology} failed: {failure}"
                self.refused = True
                self.ready.set()
            else:
                log.warning("rabbitmq channel closed", reason=failure)
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

    def _io_begin(self, batch: Batch) -> None:
        if batch.finished:
            return
        if not self.usable:
            batch.fail_rest(REASON_CONNECTION_LOST)
            return
        self._io_pump()

    def _io_unpublished(self) -> Batch | None:
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
        content_type = self._topology.content_type
        publish = self._channel.basic_publish
        try:
            with self._connection.joined():
                for index in range(batch.published, end):
                    message = messages[index]
                    properties = pika.BasicProperties(
                        content_type=content_type,
                        delivery_mode=_PERSISTENT,
                        message_id=message.message_id,
                        headers=dict(message.headers) if message.headers else None,
                    )
                    publish(exchange, message.routing_key, message.body, properties, mandatory=True)
                    self._next_tag += 1
                    key = (message.routing_key, message.message_id)
                    self._pending[self._next_tag] = _Pending(batch, index, key)
                    tags = self._by_key.get(key)
                    if tags is None:
                        self._by_key[key] = deque((self._next_tag,))
                    else:
                        tags.append(self._next_tag)
        except Exception as exc:
            log.warning("rabbitmq publish failed", error=describe(exc, self._secrets))
            self._io_fail_all(REASON_CONNECTION_LOST)
            self._io_close()
            return
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
        log.warning("rabbitmq returned a message that is not in flight", reason=reason)

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
