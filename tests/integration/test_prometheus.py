"""A real Prometheus (Debian's) scraping a running pipeline: every service is up, the series an
operator needs are there, and every PromQL expression of the Grafana dashboard
(deploy/observability) answers with series, so the dashboard cannot silently drift from the
code."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.eventually import eventually
from tests.support.pipeline import Names, Pipeline
from tests.support.services import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "observability" / "grafana-dashboard.json"
PREFIXES = ("enricher_", "user_state_", "rabbit_bridge_", "generator_", "process_")


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])


@pytest.fixture
def prometheus_binary() -> str:
    binary = os.environ.get("PROMETHEUS_BINARY") or shutil.which("prometheus")
    if not binary:
        pytest.fail(
            "no prometheus here: `scripts/observability.sh install` installs Debian's, as "
            ".ci/run does"
        )
    return binary


@contextlib.contextmanager
def start_prometheus(binary: str, targets: list[str], home: Path) -> Iterator[Prometheus]:
    port = free_port()
    listed = ", ".join(f"'{t}'" for t in targets)
    (home / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: clickstream\n    static_configs:\n"
        f"      - targets: [{listed}]\n"
    )
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        yield Prometheus(port)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_prometheus_scrapes_every_service_and_finds_the_dashboards_series(
    names: Names, pipeline: Pipeline, prometheus_binary: str, tmp_path: Path
) -> None:
    stages = pipeline.start_stages()
    sessions = pipeline.start_sessions_query()
    generator = pipeline.start(
        "generator", GENERATOR_USERS="200", GENERATOR_RATE="200", GENERATOR_CLICKS="0"
    )
    services = [stages.user_state, stages.enricher, stages.bridge, sessions, generator]
    targets = [f"127.0.0.1:{s.port}" for s in services]
    with start_prometheus(prometheus_binary, targets, tmp_path) as prometheus:

        def all_up() -> bool:
            up = prometheus.query("up")
            return len(up) == len(targets) and all(r["value"][1] == "1" for r in up)

        eventually(all_up, timeout=60, interval=1, retry_on=(OSError,))
        # Traffic through every hop, then the series an operator reads.
        for expr in (
            "enricher_clicks_consumed_total > 0",
            "enricher_click_to_vip_action_seconds_count > 0",
            "enricher_lookup_seconds_count > 0",
            "user_state_lookup_seconds_count > 0",
            "rabbit_bridge_confirm_seconds_count > 0",
            "enricher_records_aggregated_total > 0",
            "enricher_consumer_lag",
            "rabbit_bridge_consumer_lag",
        ):
            eventually(lambda e=expr: prometheus.query(e), timeout=90, interval=1)  # type: ignore[misc]
        lag = prometheus.query("enricher_consumer_lag")
        assert {r["metric"]["topic"] for r in lag} >= {names.clicks, names.vip}
        memory = prometheus.query("process_resident_memory_bytes")
        assert len(memory) == len(targets)

        known = set(prometheus.get("/api/v1/label/__name__/values"))
        dashboard = json.loads(DASHBOARD.read_text())
        plotted = {
            name
            for panel in dashboard["panels"]
            for target in panel["targets"]
            for name in re.findall(r"[a-z_]+", target["expr"])
            if name.startswith(PREFIXES)
        }
        assert len(plotted) > 15
        assert sorted(plotted - known) == [], "the dashboard plots series no service exports"
        # And every expression of every panel answers with series (rates need two scrapes).
        expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
        for expr in expressions:
            eventually(
                lambda e=expr: prometheus.query(e),  # type: ignore[misc]
                timeout=60,
                interval=1,
                message=lambda e=expr: f"no series for the dashboard's {e}",  # type: ignore[misc]
            )
        for service in services:
            assert service.terminate() == 0
