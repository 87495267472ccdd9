"""RabbitPublisher against a real RabbitMQ broker (RABBITMQ_URL).

Connection faults are injected with a small TCP proxy in front of the real broker, never by
mocking pika or the broker.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
from clickstream_common.rabbit import (
    OutboundMessage,
    PublishOutcome,
    RabbitPublisher,
    RabbitUnavailable,
    Topology,
    declare_topology,
    mask_url,
)

from tests.support.brokers import Brokers
from tests.support.eventually import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker_url(brokers: Brokers) -> str:
    return brokers.rabbitmq


@contextlib.contextmanager
def _admin_channel(url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


@pytest.fixture
def make_topology(broker_url: str) -> Iterator[Callable[..., Topology]]:
    created: list[Topology] = []

    def make(queue_type: str = "quorum", binding_key: str = "#") -> Topology:
        suffix = uuid.uuid4().hex[:12]
        topology = Topology(
            exchange=f"test-vip-actions-{suffix}",
            queue=f"test-vip-actions-{suffix}",
            binding_key=binding_key,
            queue_type=queue_type,  # type: ignore[arg-type]
        )
        created.append(topology)
        return topology

    yield make
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        for topology in created:
            # A failed delete closes the channel, so each gets its own.
            for delete in (
                lambda ch, t=topology: ch.queue_delete(t.queue),
                lambda ch, t=topology: ch.exchange_delete(t.exchange),
            ):
                channel = connection.channel()
                with contextlib.suppress(pika.exceptions.AMQPError):
                    delete(channel)
                if channel.is_open:
                    channel.close()
    finally:
        connection.close()


@pytest.fixture
def make_publisher(broker_url: str) -> Iterator[Callable[..., RabbitPublisher]]:
    publishers: list[RabbitPublisher] = []

    def make(topology: Topology, url: str | None = None, **kwargs: Any) -> RabbitPublisher:
        publisher = RabbitPublisher(
            url or broker_url, topology, connection_name="test-rabbit-publisher", **kwargs
        )
        publishers.append(publisher)
        return publisher

    yield make
    for publisher in publishers:
        publisher.close()


def _messages(
    count: int, routing_key: str = "vip.click", prefix: str = ""
) -> list[OutboundMessage]:
    tag = prefix or uuid.uuid4().hex[:8]
    return [
        OutboundMessage(
            routing_key=routing_key,
            body=b'{"event_id":"%s-%d","user_id":"u%d"}' % (tag.encode(), i, i % 97),
            message_id=f"{tag}-{i}",
            headers={"source-offset": str(i)} if i % 2 == 0 else None,
        )
        for i in range(count)
    ]


def _drain(url: str, queue: str) -> list[tuple[Any, Any, bytes]]:
    """Every message now in `queue`, read with a blocking consumer (auto-ack)."""
    with _admin_channel(url) as channel:
        expected = channel.queue_declare(queue, passive=True).method.message_count
        got: list[tuple[Any, Any, bytes]] = []
        if expected == 0:
            return got
        channel.basic_qos(prefetch_count=1000)
        for method, properties, body in channel.consume(
            queue, auto_ack=True, inactivity_timeout=30
        ):
            if method is None:
                break
            got.append((method, properties, body))
            if len(got) == expected:
                break
        channel.cancel()
        return got


def _queue_depth(url: str, queue: str) -> int:
    with _admin_channel(url) as channel:
        count: int = channel.queue_declare(queue, passive=True).method.message_count
        return count


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_large_batch_is_confirmed_and_queued_with_its_properties(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
    queue_type: str,
) -> None:
    topology = make_topology(queue_type=queue_type)
    publisher = make_publisher(topology)
    publisher.start()
    assert publisher.healthy
    messages = _messages(5_000)

    outcome = publisher.publish_batch(messages)

    assert outcome == PublishOutcome(confirmed=5_000, failed=())
    assert outcome.ok
    with _admin_channel(broker_url) as channel:
        declared = channel.queue_declare(topology.queue, passive=True)
    assert declared.method.message_count == 5_000
    received = _drain(broker_url, topology.queue)
    assert len(received) == 5_000
    # One publisher, one channel, one queue: order is preserved.
    for message, (method, properties, body) in zip(messages, received, strict=True):
        assert body == message.body
        assert method.exchange == topology.exchange
        assert method.routing_key == message.routing_key
        assert properties.message_id == message.message_id
        assert properties.delivery_mode == 2
        assert properties.content_type == "application/json"
        assert (properties.headers or None) == (dict(message.headers) if message.headers else None)


def test_queue_type_is_declared_as_asked(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    topology = make_topology(queue_type="quorum")
    make_publisher(topology).start()
    # Redeclaring with the other type must be refused: proof the broker holds a quorum queue.
    clash = Topology(topology.exchange, topology.queue, topology.binding_key, "classic")
    with pytest.raises(RabbitUnavailable, match="PRECONDITION_FAILED"):
        declare_topology(broker_url, clash)
    declare_topology(broker_url, topology)  # same arguments: idempotent


def test_unroutable_message_is_failed_as_returned(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    topology = make_topology(binding_key="vip.only")
    publisher = make_publisher(topology)
    publisher.start()
    batch = [
        OutboundMessage("vip.only", b'{"n":0}', "m-0"),
        OutboundMessage("other", b'{"n":1}', "m-1"),
        OutboundMessage("vip.only", b'{"n":2}', "m-2"),
        OutboundMessage("other", b'{"n":3}', "m-3"),
    ]

    outcome = publisher.publish_batch(batch)

    assert not outcome.ok
    assert outcome.confirmed == 2
    assert [index for index, _ in outcome.failed] == [1, 3]
    assert all("returned" in reason for _, reason in outcome.failed)
    assert [props.message_id for _, props, _ in _drain(broker_url, topology.queue)] == [
        "m-0",
        "m-2",
    ]
    assert publisher.healthy  # a return is a per-message failure, not a broken connection


def test_small_in_flight_window_still_confirms_everything(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    topology = make_topology(queue_type="classic")
    publisher = make_publisher(topology, max_in_flight=3)
    publisher.start()

    outcomes = [publisher.publish_batch(_messages(700)) for _ in range(3)]

    assert all(o == PublishOutcome(confirmed=700, failed=()) for o in outcomes)
    assert _queue_depth(broker_url, topology.queue) == 2_100


def test_empty_batch(
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    publisher = make_publisher(make_topology())
    publisher.start()
    assert publisher.publish_batch([]) == PublishOutcome(confirmed=0, failed=())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_start_against_wrong_port_raises_without_the_password(
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "NotTheRealSecret-42"
    url = f"amqp://guest:{secret}@127.0.0.1:{_free_port()}/%2F"
    publisher = make_publisher(make_topology(), url=url)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RabbitUnavailable) as excinfo:
        publisher.start(timeout=15)

    message = str(excinfo.value)
    assert secret not in message
    assert "***" in message
    assert "127.0.0.1" in message
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert secret not in caplog.text
    assert not publisher.healthy


def test_wrong_password_raises_without_the_password(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "Wrong-Secret-7"
    parts = urlsplit(broker_url)
    netloc = f"{parts.username}:{secret}@{parts.hostname}:{parts.port or 5672}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    publisher = make_publisher(make_topology(), url=url)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RabbitUnavailable) as excinfo:
        publisher.start(timeout=15)

    assert secret not in str(excinfo.value)
    assert secret not in caplog.text


def test_close_is_idempotent(
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    publisher = make_publisher(make_topology())
    publisher.start()
    assert publisher.publish_batch(_messages(10)).ok

    publisher.close()
    publisher.close()

    assert not publisher.healthy
    with pytest.raises(RuntimeError):
        publisher.publish_batch(_messages(1))
    never_started = make_publisher(make_topology())
    never_started.close()
    never_started.close()


def test_recovers_when_the_broker_closes_the_channel(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
) -> None:
    topology = make_topology()
    publisher = make_publisher(topology)
    publisher.start()
    assert publisher.publish_batch(_messages(10)).ok
    with _admin_channel(broker_url) as channel:
        channel.exchange_delete(topology.exchange)

    lost = publisher.publish_batch(_messages(50))

    assert lost.confirmed == 0
    assert len(lost.failed) == 50
    assert all("404" in reason or "connection lost" in reason for _, reason in lost.failed)
    # The next batch reconnects and redeclares the exchange and binding.
    assert publisher.publish_batch(_messages(20)).ok
    assert publisher.healthy
    assert _queue_depth(broker_url, topology.queue) == 30


class _FaultyProxy:
    """TCP proxy to the real broker that can stall broker->client traffic or cut connections."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._downstream_open = threading.Event()
        self._downstream_open.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.bytes_up = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while data := src.recv(65536):
                if up:
                    self.bytes_up += len(data)
                else:
                    self._downstream_open.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        self._downstream_open.clear()

    def resume(self) -> None:
        self._downstream_open.set()

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.resume()
        self.cut()
        self._server.close()

    def url(self, broker_url: str) -> str:
        parts = urlsplit(broker_url)
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@pytest.fixture
def proxy(broker_url: str) -> Iterator[_FaultyProxy]:
    parts = urlsplit(broker_url)
    faulty = _FaultyProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    yield faulty
    faulty.close()


def test_connection_loss_fails_unsettled_and_reconnects(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
    proxy: _FaultyProxy,
) -> None:
    topology = make_topology()
    publisher = make_publisher(topology, url=proxy.url(broker_url))
    publisher.start()
    assert publisher.publish_batch(_messages(100)).ok

    proxy.stall()  # no confirm can reach the publisher from here on
    before = proxy.bytes_up
    result: list[PublishOutcome] = []
    worker = threading.Thread(target=lambda: result.append(publisher.publish_batch(_messages(200))))
    worker.start()
    eventually(
        lambda: proxy.bytes_up - before > 200 * 50,
        timeout=30,
        interval=0.05,
        message="gave up waiting for the batch to reach the proxy",
    )
    proxy.cut()
    worker.join(60)

    assert not worker.is_alive()
    (lost,) = result
    assert lost.confirmed == 0
    assert len(lost.failed) == 200
    assert {reason for _, reason in lost.failed} == {"connection lost"}
    assert not publisher.healthy

    proxy.resume()
    assert publisher.publish_batch(_messages(100)).ok
    assert publisher.healthy


def test_batch_times_out_instead_of_hanging(
    broker_url: str,
    make_topology: Callable[..., Topology],
    make_publisher: Callable[..., RabbitPublisher],
    proxy: _FaultyProxy,
) -> None:
    topology = make_topology()
    publisher = make_publisher(topology, url=proxy.url(broker_url))
    publisher.start()
    proxy.stall()

    stuck = publisher.publish_batch(_messages(300), timeout=1.0)

    assert stuck.confirmed == 0
    assert len(stuck.failed) == 300
    assert {reason for _, reason in stuck.failed} == {"confirm timeout"}
    proxy.resume()
    assert publisher.publish_batch(_messages(100)).ok


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("amqp://bridge:p%40ss@rabbit:5672/%2F") == "amqp://bridge:***@rabbit:5672/%2F"
    assert mask_url("amqp://rabbit/%2F") == "amqp://rabbit/%2F"
