"""The four services as real processes, started the way a user starts them (`python -m`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.support.eventually import eventually

MODULES = {
    "user-state": "clickstream_user_state",
    "enricher": "clickstream_enricher",
    "rabbit-bridge": "clickstream_rabbit_bridge",
    "generator": "clickstream_generator",
}


def answers_ready(url: str) -> bool:
    """Whether a readiness endpoint answers 200 now (OSError while nothing listens)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False  # 503: alive, not ready yet


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        *,
        port: int | None = None,
        log_name: str | None = None,
    ) -> None:
        """`port` reuses a known HTTP port (a replacement answering where the old one did);
        `log_name` keeps replicas and replacements in logs of their own."""
        self.name = name
        self.port = port or free_port()
        self.env = {**os.environ, **env, "HTTP_PORT": str(self.port), "LOG_FORMAT": "json"}
        self.log_path = log_dir / f"{log_name or name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", MODULES[self.name]], env=self.env, stdout=log, stderr=log
        )
        return self

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            self.check_alive()
            return self.get("/readyz", timeout=2)[0] == 200

        eventually(
            ready,
            timeout=timeout,
            retry_on=(OSError,),
            message=lambda: f"{self.name} not ready; log:\n{self.log_tail()}",
        )

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}; log:\n{self.log_tail()}"
            )

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as Kubernetes sends it; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s") from None
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL (kill -9): no handler runs, nothing is flushed or committed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def metric(self, name: str) -> float:
        """One value from /metrics (Prometheus text), e.g. `generator_clicks_produced_total`."""
        value = self.metric_if_present(name)
        if value is None:
            raise AssertionError(f"{self.name} has no metric {name}")
        return value

    def metric_if_present(self, name: str) -> float | None:
        """As `metric`, but None while the service has not registered it yet."""
        status, body = self.get("/metrics")
        assert status == 200, f"{self.name} /metrics answered {status}"
        for line in body.decode().splitlines():
            metric, _, value = line.partition(" ")
            if metric == name:
                return float(value)
        return None

    def wait_exit(self, timeout: float = 300) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def wait_metric(
        self,
        name: str,
        at_least: float,
        timeout: float = 120,
        check: Callable[[], None] | None = None,
    ) -> float:
        """Until counter `name` reaches `at_least`: a point in the stream named by what was done
        rather than by how long it took. `check` runs while waiting (e.g. everyone still alive);
        the process itself must stay alive. Returns the value reached."""

        def reached() -> tuple[float] | None:
            if check is not None:
                check()
            self.check_alive()
            value = self.metric_if_present(name)  # None until the service registered it
            return (value,) if value is not None and value >= at_least else None

        (value,) = eventually(
            reached,
            timeout=timeout,
            retry_on=(OSError,),  # not serving yet
            message=lambda: f"{self.name}: {name} short of {at_least:g}; log:\n{self.log_tail()}",
        )
        return value

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
