"""docs/PERFORMANCE.md's enricher figures: the ratios and verdicts the issue's targets are judged
by, computed from a run's results (bench/report_enricher.py)."""

from __future__ import annotations

from typing import Any

from bench.report_enricher import enricher_section, own_cpu, throughput_targets


def _timing(rate: float, cpu_per_million: dict[str, float]) -> dict[str, Any]:
    return {
        "records": 1_000_000,
        "seconds": 1_000_000 / rate,
        "rate": rate,
        "cores": {name: value * rate / 1e6 for name, value in cpu_per_million.items()},
        "cpu_per_million": cpu_per_million,
        "outputs": 100_000,
    }


def _enricher_results() -> dict[str, Any]:
    return {
        "users": 100_000,
        "clicks": 1_000_000,
        "expected_vip": 100_000,
        "consumer_tool": _timing(400_000, {"consumer tool": 2.0, "kafka": 1.0}),
        "enricher_x1": _timing(90_000, {"enricher": 10.0, "user-state": 3.0, "kafka": 2.0}),
        "kafka_streams": _timing(120_000, {"kafka streams": 8.0, "kafka": 1.5}),
        "enricher_x2": _timing(150_000, {"enricher": 11.0, "user-state": 3.0, "kafka": 2.0}),
        "quix": {"error": "RuntimeError: quix_enricher exited with 1"},
    }


def _row(rows: list[list[str]], starts: str) -> list[str]:
    return next(row for row in rows if row[0].startswith(starts))


def test_own_cpu_counts_every_process_of_the_system_but_not_the_broker() -> None:
    assert own_cpu(_timing(1.0, {"enricher": 10.0, "user-state": 3.0, "kafka": 2.0})) == 13.0
    assert own_cpu({"rate": 1.0}) is None


def test_targets_compare_the_enricher_with_kafka_streams_by_rate_and_by_cpu() -> None:
    rows = throughput_targets(_enricher_results())
    rate = _row(rows, "enricher / Kafka Streams >= 0.80")
    assert rate[1] == "0.75" and rate[2].startswith("**missed** by 6%")
    cpu = _row(rows, "enricher + user-state CPU s per million clicks")
    assert cpu[1] == "1.62" and cpu[2].startswith("**missed**: 1.3x")
    replicas = _row(rows, "enricher 2 replicas / 1 replica")
    assert replicas[1] == "1.67" and replicas[2].startswith("**missed**")
    assert _row(rows, "enricher / Quix Streams")[2] == "not measured"


def test_the_section_shows_cpu_per_million_and_a_failed_peer_with_its_reason() -> None:
    text = "\n".join(enricher_section(_enricher_results()))
    streams = next(line for line in text.splitlines() if "Kafka Streams, KStream" in line)
    assert "| 0.75 |" in streams and "**8.0** (+ kafka 1.5)" in streams
    assert "failed: RuntimeError: quix_enricher exited with 1" in text


def test_the_headline_pair_is_reported_as_its_median_round() -> None:
    from bench.enricher import median_round

    rounds = [{"rate": 70.0}, {"rate": 50.0}, {"rate": 60.0}]
    assert median_round(rounds) == {"rate": 60.0, "rounds": [70.0, 50.0, 60.0]}
    failed = {"error": "RuntimeError: exited"}
    assert median_round([failed, {"rate": 50.0}, {"rate": 60.0}])["rate"] == 50.0
    assert median_round([failed, failed]) == failed
