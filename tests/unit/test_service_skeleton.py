"""The skeleton every service's __main__ runs: exit codes, health while it runs, signals, and
the order in which what it built is closed."""

from __future__ import annotations

import os
import signal
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from clickstream_common.kafka import KafkaFatalError
from clickstream_common.lifecycle import Shutdown
from clickstream_common.metrics import Metrics
from clickstream_common.service import ServiceContainer, closing, run_service
from clickstream_common.settings import Env, ObservabilitySettings, SettingsError
from dependency_injector import providers

closed: list[str] = []


@dataclass(frozen=True)
class FakeSettings:
    observability: ObservabilitySettings
    outcome: str


def settings_for(outcome: str) -> FakeSettings:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = Env({"HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1", "LOG_FORMAT": "console"})
    return FakeSettings(ObservabilitySettings.read(env, default_port=0), outcome)


class Part:
    def __init__(self, name: str) -> None:
        self.name = name

    def close(self) -> None:
        closed.append(self.name)


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class FakeService:
    """Ends as its settings say; on "probe" it reads its own health server while it runs, then
    sends itself SIGTERM and waits for the skeleton's handler to ask it to stop."""

    def __init__(
        self, settings: FakeSettings, shutdown: Shutdown, metrics: Metrics, _consumer: Part
    ) -> None:
        self._settings = settings
        self._shutdown = shutdown
        self.ready = False
        self.seen: dict[str, tuple[int, str]] = {}
        metrics.counter("things", "things done")

    def run(self) -> None:
        outcome, port = self._settings.outcome, self._settings.observability.http_port
        if outcome == "kafka":
            raise KafkaFatalError("no broker")
        if outcome == "bug":
            raise ZeroDivisionError
        if outcome == "probe":
            self.seen["before"] = get(port, "/readyz")
            self.ready = True
            self.seen["after"] = get(port, "/readyz")
            self.seen["metrics"] = get(port, "/metrics")
            os.kill(os.getpid(), signal.SIGTERM)
            assert self._shutdown.wait(30), "SIGTERM did not reach the service"


class Container(ServiceContainer):
    settings = providers.Dependency(instance_of=FakeSettings)
    metrics = providers.Singleton(Metrics, "fake")
    publisher = closing(Part, "publisher")
    consumer = closing(Part, "consumer", needs=[publisher])
    service = providers.Singleton(
        FakeService, settings, ServiceContainer.shutdown, metrics, consumer
    )


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    """The skeleton installs SIGTERM and SIGINT handlers: give pytest its own back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    closed.clear()
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def run(outcome: str, container: type[ServiceContainer] = Container) -> int:
    return run_service("fake", lambda: settings_for(outcome), container, description="", argv=[])


@pytest.mark.parametrize(("outcome", "code"), [("finish", 0), ("kafka", 1), ("bug", 1)])
def test_exit_codes(outcome: str, code: int) -> None:
    assert run(outcome) == code


def test_a_bad_setting_exits_2_naming_it_before_anything_is_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def bad() -> FakeSettings:
        raise SettingsError(["HTTP_PORT must be an integer"])

    assert run_service("fake", bad, Container, description="", argv=[]) == 2
    assert "fake: " in (err := capsys.readouterr().err)
    assert "HTTP_PORT must be an integer" in err
    assert closed == []


def test_what_was_built_is_closed_dependents_first_even_after_a_failure() -> None:
    assert run("bug") == 1
    assert closed == ["consumer", "publisher"]


def test_help_describes_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run_service(
            "fake", lambda: settings_for("finish"), Container, description="Fakes.", argv=["-h"]
        )
    assert exit_.value.code == 0
    assert "Fakes." in capsys.readouterr().out


def test_health_and_metrics_are_served_while_it_runs_and_sigterm_stops_it_cleanly() -> None:
    container_seen: list[FakeService] = []

    class Watched(Container):
        service = providers.Singleton(
            lambda service: container_seen.append(service) or service,
            Container.service,
        )

    assert run("probe", Watched) == 0
    seen = container_seen[0].seen
    assert seen["before"][0] == 503
    assert seen["after"][0] == 200
    assert seen["metrics"][0] == 200
    assert "fake_things_total 0.0" in seen["metrics"][1]
    assert closed == ["consumer", "publisher"]
