"""Secrets on real brokers: credentials from mounted files (`<NAME>_FILE`), RabbitMQ over TLS
(amqps://), and no password in any log line, at LOG_LEVEL=debug, whether the service works or not.

RabbitMQ: a user of its own with a distinctive password, made through the management API (or,
where that cannot be reached, the brokers' own credentials). TLS: the local RabbitMQ listens in
plain AMQP, so a TLS-terminating proxy with a CA made for the test stands in front of it; the
bridge must verify the proxy's certificate against RABBITMQ_CA_FILE and its host name.
Kafka: SASL cannot work against the local PLAINTEXT broker, so the check is that a service
failing to connect with a SASL password from a file never logs it.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from clickstream_common.contracts import event_id
from clickstream_common.rabbit import RabbitUnavailable, declare_topology
from clickstream_common.rabbit import Topology as RabbitTopology
from confluent_kafka import Producer

from tests.support.brokers import Brokers
from tests.support.collect import drain
from tests.support.pipeline import Names, Pipeline

pytestmark = pytest.mark.integration

MANAGEMENT_PORT = 15672


def secret_forms(password: str) -> set[str]:
    """Every way a password can show up in text: as is, URL-quoted, base64 in a SASL frame."""
    return {password, quote(password, safe=""), base64.b64encode(password.encode()).decode()}


def assert_nowhere(log: str, password: str) -> None:
    for form in secret_forms(password):
        assert form not in log, f"the password appears in the log as {form!r}"


# ---- a RabbitMQ user of the test's own --------------------------------------------------------


@dataclass(frozen=True)
class RabbitAccount:
    host: str
    port: int
    username: str
    password: str
    vhost: str

    def url(self, scheme: str = "amqp", host: str | None = None, port: int | None = None) -> str:
        credentials = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        location = f"{host or self.host}:{port or self.port}"
        return f"{scheme}://{credentials}@{location}/{quote(self.vhost, safe='')}"


def _management(method: str, path: str, admin: tuple[str, str], host: str, body: object) -> None:
    request = urllib.request.Request(
        f"http://{host}:{MANAGEMENT_PORT}/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture
def rabbit_account(brokers: Brokers) -> Iterator[RabbitAccount]:
    """A user with a distinctive password (one that needs URL-quoting), removed afterwards."""
    parts = urlsplit(brokers.rabbitmq)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    vhost = unquote((parts.path or "/%2F")[1:] or "%2F")
    admin = (
        unquote(parts.username or "guest"),
        unquote(parts.password or "guest"),
    )
    username = f"it-secret-{uuid.uuid4().hex[:8]}"
    password = f"Sx/{uuid.uuid4().hex}+%@!"
    try:
        _management("PUT", f"users/{username}", admin, host, {"password": password, "tags": ""})
        _management(
            "PUT",
            f"permissions/{quote(vhost, safe='')}/{username}",
            admin,
            host,
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
    except (urllib.error.URLError, OSError) as exc:
        print(f"no management API at {host}:{MANAGEMENT_PORT} ({exc}): using the brokers' account")
        yield RabbitAccount(host, port, admin[0], admin[1], vhost)
        return
    try:
        yield RabbitAccount(host, port, username, password, vhost)
    finally:
        with suppress(urllib.error.URLError, OSError):
            _management("DELETE", f"users/{username}", admin, host, None)


# ---- a TLS-terminating proxy with a CA of the test's own ---------------------------------------


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A CA and a server certificate for 127.0.0.1 and localhost, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test's certificates")
    where = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, csr, cert = (
        where / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem")
    )
    ext = where / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=where)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
            str(ca), "-days", "2", "-subj", "/CN=clickstream test CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return Tls(ca, cert, key)


class TlsProxy:
    """Accepts TLS on a local port and relays the plaintext to `target` (RabbitMQ's AMQP port)."""

    def __init__(self, tls: Tls, target: tuple[str, int]) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(tls.cert_file, tls.key_file)
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self._context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        self.handshakes += 1
        upstream = socket.create_connection(self._target)
        threading.Thread(target=self._pump, args=(upstream, secure), daemon=True).start()
        self._pump(secure, upstream)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.close()

    def close(self) -> None:
        self._stopped.set()
        self._listener.close()


@pytest.fixture
def tls_proxy(tls: Tls, rabbit_account: RabbitAccount) -> Iterator[TlsProxy]:
    proxy = TlsProxy(tls, (rabbit_account.host, rabbit_account.port))
    yield proxy
    proxy.close()


# ---- the tests --------------------------------------------------------------------------------


def vip_action(index: int) -> bytes:
    return json.dumps(
        {
            "event_id": event_id("secrets", 0, index),
            "user_id": f"u{index}",
            "name": "Ann",
            "page": index,
            "action": "checkout",
            "event_time": "2026-11-27T20:52:23.123Z",
        }
    ).encode()


def test_the_bridge_works_over_amqps_with_its_url_from_a_file_and_never_logs_the_password(
    brokers: Brokers,
    names: Names,
    pipeline: Pipeline,
    rabbit_account: RabbitAccount,
    tls: Tls,
    tls_proxy: TlsProxy,
    tmp_path: Path,
    kafka_producer: Callable[..., Producer],
) -> None:
    url_file = tmp_path / "rabbitmq-url"
    url_file.write_text(rabbit_account.url("amqps", "127.0.0.1", tls_proxy.port) + "\n")
    bridge = pipeline.start(
        "rabbit-bridge",
        RABBITMQ_URL="",
        RABBITMQ_URL_FILE=str(url_file),
        RABBITMQ_CA_FILE=str(tls.ca_file),
        LOG_LEVEL="debug",
    )
    bridge.wait_ready(timeout=90)
    assert tls_proxy.handshakes >= 1, "the bridge did not come through TLS"

    producer = kafka_producer()
    for index in range(5):
        producer.produce(names.vip, key=f"u{index}".encode(), value=vip_action(index))
    assert producer.flush(30) == 0
    bodies = drain(brokers.rabbitmq, names.queue, until=5, timeout=90)
    assert sorted(bodies) == sorted(vip_action(i) for i in range(5))

    assert bridge.terminate() == 0
    log = bridge.log_path.read_text(errors="replace")
    assert f"amqps://{rabbit_account.username}:***@127.0.0.1:{tls_proxy.port}" in log
    assert_nowhere(log, rabbit_account.password)


def test_without_the_ca_the_certificate_is_refused_and_the_password_not_shown(
    rabbit_account: RabbitAccount, tls_proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RABBITMQ_CA_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = rabbit_account.url("amqps", "127.0.0.1", tls_proxy.port)
    with pytest.raises(RabbitUnavailable) as refused:
        declare_topology(url, RabbitTopology(exchange="never", queue="never"))
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) or "certificate" in str(refused.value)
    assert_nowhere(str(refused.value), rabbit_account.password)


def test_ssl_cert_file_is_honoured_for_amqps(
    rabbit_account: RabbitAccount, tls: Tls, tls_proxy: TlsProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RABBITMQ_CA_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    queue = f"it-secrets-{uuid.uuid4().hex[:8]}"
    declare_topology(
        rabbit_account.url("amqps", "127.0.0.1", tls_proxy.port),
        RabbitTopology(exchange=queue, queue=queue, queue_type="classic"),
    )


def test_a_wrong_rabbitmq_password_from_a_file_fails_the_bridge_without_showing_it(
    pipeline: Pipeline, rabbit_account: RabbitAccount, tmp_path: Path
) -> None:
    wrong = f"Wr/{uuid.uuid4().hex}+%"
    bad = RabbitAccount(
        rabbit_account.host,
        rabbit_account.port,
        rabbit_account.username,
        wrong,
        rabbit_account.vhost,
    )
    url_file = tmp_path / "rabbitmq-url"
    url_file.write_text(bad.url())
    bridge = pipeline.start(
        "rabbit-bridge", RABBITMQ_URL="", RABBITMQ_URL_FILE=str(url_file), LOG_LEVEL="debug"
    )
    code = bridge.wait_exit(timeout=120)
    log = bridge.log_path.read_text(errors="replace")
    assert code != 0, log[-3000:]
    assert "ACCESS_REFUSED" in log or "access" in log.lower(), log[-3000:]
    assert_nowhere(log, wrong)


def test_a_kafka_sasl_password_from_a_file_is_never_logged_by_a_service_failing_to_connect(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    password = f"Ks/{uuid.uuid4().hex}+%"
    key_password = f"Kk/{uuid.uuid4().hex}"
    (tmp_path / "sasl").write_text(password + "\n")
    (tmp_path / "key").write_text(key_password + "\n")
    service = pipeline.start(
        "user-state",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_USERNAME="it-user",
        KAFKA_SASL_PASSWORD_FILE=str(tmp_path / "sasl"),
        KAFKA_SSL_KEY_PASSWORD_FILE=str(tmp_path / "key"),
        LOG_LEVEL="debug",
    )
    # It gives up after its 30 s metadata timeout; the log then says why, without the password.
    try:
        code: int | None = service.wait_exit(timeout=90)
    except subprocess.TimeoutExpired:
        code = None
        service.terminate(timeout=30)
    log = service.log_path.read_text(errors="replace")
    assert code != 0, log[-3000:]
    assert "transport" in log.lower() or "sasl" in log.lower(), log[-3000:]
    assert_nowhere(log, password)
    assert_nowhere(log, key_password)
