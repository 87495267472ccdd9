"""The metrics facade over prometheus-client: what /metrics shows and what services log at exit."""

from __future__ import annotations

import pytest
from clickstream_common.metrics import Metrics


def test_counters_and_gauges_render_in_the_prometheus_text_format() -> None:
    metrics = Metrics("svc")
    metrics.counter("clicks", "clicks read")
    level = [2.5]
    metrics.gauge("pending", "clicks waiting", lambda: level[0])
    metrics.inc("clicks", 3)
    metrics.inc("clicks", 0)
    level[0] = 4.0

    text = metrics.render().decode()

    assert "# TYPE svc_clicks_total counter" in text
    assert "svc_clicks_total 3.0" in text
    assert "svc_pending 4.0" in text
    assert metrics.snapshot() == {"clicks": 3.0, "pending": 4.0}


def test_two_services_in_one_process_keep_their_own_counts() -> None:
    first, second = Metrics("svc"), Metrics("svc")
    for metrics in (first, second):
        metrics.counter("clicks", "clicks read")
    first.inc("clicks", 5)

    assert first.value("clicks") == 5
    assert second.value("clicks") == 0


def test_an_undeclared_counter_is_a_bug_not_a_silent_zero() -> None:
    metrics = Metrics("svc")
    with pytest.raises(KeyError):
        metrics.inc("nope")
    with pytest.raises(KeyError):
        metrics.value("nope")


def test_runtime_collectors_add_process_metrics() -> None:
    assert "process_cpu_seconds_total" in Metrics("svc", runtime=True).render().decode()


def test_histograms_render_buckets_in_seconds() -> None:
    metrics = Metrics(prefix="svc")
    metrics.histogram("lookup", "a lookup")
    metrics.observe("lookup", 0.003)
    metrics.observe_all("lookup", [0.02, 2.0])
    text = metrics.render().decode()
    assert 'svc_lookup_seconds_bucket{le="0.005"} 1.0' in text
    assert 'svc_lookup_seconds_bucket{le="0.025"} 2.0' in text
    assert 'svc_lookup_seconds_bucket{le="+Inf"} 3.0' in text
    assert "svc_lookup_seconds_count 3.0" in text


def test_a_partition_gauge_is_read_at_scrape_time() -> None:
    metrics = Metrics(prefix="svc")
    lag = {("click", 1): 5.0}
    metrics.partition_gauge("consumer_lag", "behind", lambda: dict(lag))
    assert 'svc_consumer_lag{partition="1",topic="click"} 5.0' in metrics.render().decode()
    lag[("click", 1)] = 0.0
    lag[("click", 0)] = 7.0
    text = metrics.render().decode()
    assert 'svc_consumer_lag{partition="0",topic="click"} 7.0' in text
    assert 'svc_consumer_lag{partition="1",topic="click"} 0.0' in text
