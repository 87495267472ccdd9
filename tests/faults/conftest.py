"""Fixtures of the fault suite: a broker pair of its own, the pipeline with kill and restart, and
the report written to docs/RELIABILITY.md at the end of the session.

Scenarios restart Kafka and RabbitMQ, so they never use the shared local brokers (9092, 5672)
that other test runs may be using: `scripts/brokers.sh` starts a second pair (Kafka 19192,
RabbitMQ 5682), parametrised by environment, with its data and logs under .local/faults; a lock
in the temp directory keeps to one fault session per machine. KAFKA_BOOTSTRAP_SERVERS and
RABBITMQ_URL are ignored here: brokers the suite did not start are not its to restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pika
import pytest

from tests.faults.report import SESSION_CATALOGUE, Machine, Row, SessionRow, write
from tests.support.brokers import ROOT
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service

HOME = ROOT / ".local" / "faults"
logging.getLogger("pika").setLevel(logging.CRITICAL)  # the tap's reconnects are expected noise
PAIR_ENV = {
    "BROKERS_HOME": str(HOME),
    "KAFKA_PORT": "19192",
    "KAFKA_CONTROLLER_PORT": "19193",
    "RABBITMQ_NODE_PORT": "5682",
    "RABBITMQ_NODENAME": "rabbit_faults",
    "RABBITMQ_DIST_PORT": "25682",
    "RABBITMQ_MANAGEMENT_PORT": "15682",
    "BROKERS_REGISTRY": "no",  # the faults run JSON: no schema registry for this pair
}
PORTS = [int(PAIR_ENV[name]) for name in PAIR_ENV if name.endswith("_PORT")]


class DedicatedBrokers:
    """The fault suite's own Kafka and RabbitMQ, driven through scripts/brokers.sh."""

    kafka = f"127.0.0.1:{PAIR_ENV['KAFKA_PORT']}"
    rabbitmq = f"amqp://guest:guest@127.0.0.1:{PAIR_ENV['RABBITMQ_NODE_PORT']}/%2F"
    origin = "scripts/brokers.sh, BROKERS_HOME=.local/faults"
    started = 0.0  # time.monotonic() when the suite began starting them

    def _script(self, command: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env.update(PAIR_ENV)
        subprocess.run([str(ROOT / "scripts" / "brokers.sh"), command], check=True, env=env)

    def fresh_start(self) -> None:
        """Stop what a crashed earlier session may have left, wipe the data, start both."""
        self._script("stop")
        taken = [port for port in PORTS if _accepts(port)]
        if taken:  # brokers.sh would use them, and the scenarios would restart someone else's
            raise RuntimeError(
                f"ports {taken} of the fault brokers are taken by something this checkout did not"
                " start (a fault session of another checkout that was killed?); stop it there"
                " with `BROKERS_HOME=.local/faults KAFKA_PORT=19192 RABBITMQ_NODE_PORT=5682"
                " RABBITMQ_NODENAME=rabbit_faults scripts/brokers.sh stop`"
            )
        for folder in (HOME / "kafka" / "data", HOME / "rabbitmq" / "mnesia", HOME / "logs"):
            shutil.rmtree(folder, ignore_errors=True)
        self._script("start")

    def stop(self) -> None:
        self._script("stop")

    def outage(self, broker: str, down_seconds: float) -> tuple[float, float]:
        """Stop `broker` ("kafka" or "rabbitmq") with scripts/brokers.sh, keep it stopped for
        `down_seconds`, start it again. Returns, as time.time(), when it stopped accepting
        connections (watched from the side while the stop runs) and when it answered again."""
        port = int(PAIR_ENV["KAFKA_PORT" if broker == "kafka" else "RABBITMQ_NODE_PORT"])
        refused: list[float] = []
        watching = threading.Event()

        def watch() -> None:
            watching.set()
            while not refused:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    refused.append(time.time())
                time.sleep(0.02)  # polling interval

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        watching.wait()
        self._script(f"stop-{broker}")
        watcher.join(10)
        assert refused, f"{broker} still accepts connections after stop-{broker}"
        time.sleep(down_seconds)  # the fault itself: how long the broker stays away
        self._script(f"start-{broker}")
        return refused[0], time.time()

    def machine(self) -> Machine:
        jars = sorted((ROOT / ".local" / "kafka" / "lib").glob("kafka-server-[0-9]*.jar"))
        kafka = jars[0].stem.removeprefix("kafka-server-") if jars else "?"
        connection = pika.BlockingConnection(pika.URLParameters(self.rabbitmq))
        try:
            version = connection._impl.server_properties.get("version", b"?")
        finally:
            connection.close()
        rabbitmq = version.decode() if isinstance(version, bytes) else str(version)
        return Machine(kafka=kafka, rabbitmq=rabbitmq)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# The ports are the machine's, not the checkout's: one fault session at a time on this machine
# (a CI clone elsewhere included); a second one waits for the first to finish.
LOCK = Path(tempfile.gettempdir()) / f"clickstream-faults-{PAIR_ENV['KAFKA_PORT']}.lock"


@pytest.fixture(scope="session")
def brokers(request: pytest.FixtureRequest) -> Iterator[DedicatedBrokers]:
    HOME.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(
                    f"\nanother fault session ({lock.read().strip() or '?'}) holds {LOCK}:"
                    " waiting for it to finish",
                    flush=True,
                )
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.truncate(0)
        lock.write(f"pid {os.getpid()} in {ROOT}\n")
        lock.flush()
        pair = DedicatedBrokers()
        pair.started = time.monotonic()
        pair.fresh_start()
        try:
            yield pair
        finally:
            pair.stop()


DESELECTED: list[str] = []


def pytest_deselected(items: list[pytest.Item]) -> None:
    DESELECTED.extend(i.nodeid for i in items if i.nodeid.startswith("tests/faults/"))


@pytest.fixture(scope="session")
def report(brokers: DedicatedBrokers) -> Iterator[list[Row]]:
    """Rows added by the scenarios; the document is written when the session ends (to
    docs/RELIABILITY.md only when every scenario ran, else next to the brokers' data)."""
    machine = brokers.machine()
    yield ROWS
    target = write(
        ROWS,
        machine,
        time.monotonic() - brokers.started,
        every_test=not DESELECTED,
        session_rows=SESSION_ROWS,
    )
    print(f"\nfault report written to {target.relative_to(ROOT)}")


ROWS: list[Row] = []
SESSION_ROWS: list[SessionRow] = []


@pytest.fixture(scope="session")
def session_report(report: list[Row]) -> list[SessionRow]:
    """The sessions scenarios' rows, written with the others when the session ends."""
    return SESSION_ROWS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    if report.skipped and report.when == "setup" and item.nodeid.startswith("tests/faults/"):
        # A skipped scenario stays in the table, with its reason, rather than vanishing.
        function = getattr(item, "originalname", item.name)
        params = getattr(getattr(item, "callspec", None), "params", {})
        scenario = function.removeprefix("test_").replace("_", "-")
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if scenario in SESSION_CATALOGUE:
            session_row = SessionRow(scenario, params.get("mode", "at-least-once"), "skipped")
            session_row.notes.append(reason.removeprefix("Skipped: "))
            SESSION_ROWS.append(session_row)
            return report
        row = Row(scenario, params.get("mode", ""))
        row.mode = row.mode or "at-least-once"
        row.outcome = "skipped"
        row.notes.append(reason.removeprefix("Skipped: "))
        ROWS.append(row)
    return report


@pytest.fixture
def names() -> Names:
    return Names(f"ft-{uuid.uuid4().hex[:10]}")


class FaultPipeline(Pipeline):
    """The four services as processes, plus what faults need: kill -9, a replacement on the same
    port, replicas with logs of their own, and a check that nothing died unasked."""

    # PYTHONFAULTHANDLER: a SIGABRT at teardown of a failed scenario dumps every thread's
    # stack into the service's log, which shows where a stuck service is stuck.
    extra_env: Mapping[str, str] = {"PYTHONFAULTHANDLER": "1"}

    def __init__(self, brokers: DedicatedBrokers, names: Names, log_dir: Path) -> None:
        super().__init__(brokers, names, log_dir)
        self.expected_down: set[int] = set()

    def kill(self, service: Service) -> None:
        self.expected_down.add(id(service))
        service.kill()

    def terminate(self, service: Service) -> int:
        self.expected_down.add(id(service))
        return service.terminate()

    def check_alive(self) -> None:
        """Every service not stopped on purpose still runs (the generator may have ended, 0)."""
        for service in self.services:
            if id(service) in self.expected_down or service.process is None:
                continue
            code = service.process.poll()
            if code is None or (service.name == "generator" and code == 0):
                continue
            raise AssertionError(f"{service.name} exited with {code}; log:\n{service.log_tail()}")


@pytest.fixture
def pipeline(
    brokers: DedicatedBrokers, names: Names, request: pytest.FixtureRequest
) -> Iterator[FaultPipeline]:
    log_dir = HOME / "logs" / request.node.name.replace("/", "_")
    log_dir.mkdir(parents=True, exist_ok=True)
    running = FaultPipeline(brokers, names, log_dir)
    yield running
    failed = not getattr(request.node, "rep_call", None) or request.node.rep_call.failed
    for service in reversed(running.services):
        if service.process is not None and service.process.poll() is None:
            if failed:  # leave the stacks of whatever still runs in its log
                with service.log_path.open("a") as log:
                    log.write(
                        "=== tests/faults: the scenario failed and this process was still"
                        " running; the test sends it SIGABRT now so that Python prints every"
                        " thread's stack below (the abort is the test's, not the service's) ===\n"
                    )
                service.process.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    service.process.wait(10)
            service.process.kill()
            service.process.wait(30)
    if failed:
        print(f"\nservice logs: {log_dir.relative_to(ROOT)}")
