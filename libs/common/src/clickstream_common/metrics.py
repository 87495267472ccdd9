"""A service's counters and gauges, exposed by prometheus-client.

Each service owns one registry rather than the library's global one, so a process (or a test)
may hold several services' metrics side by side without name clashes. Domain code sees only
`counter`, `gauge` and `inc`, and bumps a counter once per batch with the batch's count: the
hot path pays one locked add per batch, not one per record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds, from a millisecond to a minute: lookups and batches at the low end, a click waiting
# for its user or a broker away at the high end.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class Metrics:
    def __init__(self, prefix: str, *, runtime: bool = False) -> None:
        """`runtime` adds the process, platform and GC collectors: what an operator expects
        from a service's /metrics, left out of tests that only count."""
        self._prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms: dict[str, Histogram] = {}
        self._per_partition: set[str] = set()
        if runtime:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def counter(self, name: str, help_text: str) -> None:
        if name not in self._counters:
            self._counters[name] = Counter(
                f"{self._prefix}_{name}", help_text, registry=self.registry
            )

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = self._gauges[name] = Gauge(
                f"{self._prefix}_{name}", help_text, registry=self.registry
            )
        gauge.set_function(read)

    def histogram(
        self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        """A distribution in seconds (`<prefix>_<name>_seconds`): its quantiles are what an
        operator alerts on, not the mean."""
        if name not in self._histograms:
            self._histograms[name] = Histogram(
                f"{self._prefix}_{name}_seconds", help_text, buckets=buckets, registry=self.registry
            )

    def observe(self, name: str, seconds: float) -> None:
        self._histograms[name].observe(seconds)

    def observe_all(self, name: str, values: list[float]) -> None:
        """Many observations at once (a batch's per-record latencies)."""
        observe = self._histograms[name].observe
        for value in values:
            observe(value)

    def partition_gauge(
        self, name: str, help_text: str, read: Callable[[], dict[tuple[str, int], float]]
    ) -> None:
        """A gauge per (topic, partition), read at scrape time: consumer lag, say."""
        if name not in self._per_partition:
            self._per_partition.add(name)
            self.registry.register(_PerPartition(f"{self._prefix}_{name}", help_text, read))

    def inc(self, name: str, amount: int = 1) -> None:
        if amount:
            self._counters[name].inc(amount)

    def value(self, name: str) -> float:
        sample = f"{self._prefix}_{name}" + ("_total" if name in self._counters else "")
        value = self.registry.get_sample_value(sample)
        if value is None:
            raise KeyError(name)
        return value

    def snapshot(self) -> dict[str, float]:
        """Every counter and gauge by its short name, for the log line a service ends with."""
        return {name: self.value(name) for name in [*self._counters, *self._gauges]}

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PerPartition(Collector):
    def __init__(
        self, name: str, help_text: str, read: Callable[[], dict[tuple[str, int], float]]
    ) -> None:
        self._name = name
        self._help = help_text
        self._read = read

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self._name, self._help, labels=["topic", "partition"])

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for (topic, partition), value in sorted(self._read().items()):
            family.add_metric([topic, str(partition)], value)
        yield family
