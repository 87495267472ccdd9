"""A service started before its brokers waits for them instead of exiting (as on Kubernetes,
where everything starts together), and one whose broker refuses it stops at start.

The brokers "come up" late through a TCP forwarder opened on a port the service was already
told to use, in front of the real Kafka and RabbitMQ: what answers is the real broker.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.brokers import Brokers
from tests.support.eventually import eventually
from tests.support.pipeline import Pipeline
from tests.support.services import Service, free_port

pytestmark = pytest.mark.integration


class LateListener:
    """Forwards a port, once `open()` is called, to a real broker."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self._upstream = upstream
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def open(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@pytest.fixture
def late_brokers(brokers: Brokers) -> Iterator[tuple[LateListener, LateListener]]:
    rabbit = urlsplit(brokers.rabbitmq)
    kafka = LateListener(free_port(), _host_port(brokers.kafka.split(",")[0]))
    rabbitmq = LateListener(free_port(), (rabbit.hostname or "127.0.0.1", rabbit.port or 5672))
    yield kafka, rabbitmq
    kafka.close()
    rabbitmq.close()


def _logged(service: Service, text: str) -> bool:
    service.check_alive()
    return text in service.log_path.read_text()


def test_the_bridge_waits_for_kafka_then_rabbitmq_not_ready_meanwhile(
    pipeline: Pipeline, brokers: Brokers, late_brokers: tuple[LateListener, LateListener]
) -> None:
    kafka, rabbitmq = late_brokers
    bridge = pipeline.start(
        "rabbit-bridge",
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{kafka.port}",
        RABBITMQ_URL=_with_port(brokers.rabbitmq, rabbitmq.port),
    )
    eventually(lambda: _logged(bridge, "waiting for Kafka"), timeout=90)
    assert bridge.get("/readyz")[0] == 503

    kafka.open()
    eventually(lambda: _logged(bridge, "waiting for RabbitMQ"), timeout=120)
    assert _logged(bridge, "answers")  # Kafka's "answers" line, with the seconds it waited
    assert bridge.get("/readyz")[0] == 503

    rabbitmq.open()
    bridge.wait_ready(timeout=120)
    assert bridge.terminate() == 0
    log = bridge.log_path.read_text()
    assert log.count("waiting for Kafka") == 1, "one line says what it waits for"


def test_shutdown_while_waiting_is_a_clean_stop(
    pipeline: Pipeline, late_brokers: tuple[LateListener, LateListener]
) -> None:
    kafka, _ = late_brokers
    enricher = pipeline.start("enricher", KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{kafka.port}")
    eventually(lambda: _logged(enricher, "waiting for Kafka"), timeout=90)
    assert enricher.terminate() == 0
    assert "stopped while waiting for Kafka" in enricher.log_path.read_text()


def test_a_broker_refusing_the_credentials_stops_the_bridge_at_start(
    pipeline: Pipeline, brokers: Brokers
) -> None:
    parts = urlsplit(brokers.rabbitmq)
    netloc = f"{parts.username}:not-the-password@{parts.hostname}:{parts.port or 5672}"
    wrong = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    bridge = pipeline.start("rabbit-bridge", RABBITMQ_URL=wrong)
    assert bridge.process is not None
    assert bridge.process.wait(120) == 1
    log = bridge.log_path.read_text()
    assert "cannot go on" in log and "not-the-password" not in log
    assert "waiting for RabbitMQ" not in log
