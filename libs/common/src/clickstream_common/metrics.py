"""A service's counters and gauges, exposed by prometheus-client.

Each service owns one registry rather than the library's global one, so a process (or a test)
may hold several services' metrics side by side without name clashes. Domain code sees only
`counter`, `gauge` and `inc`, and bumps a counter once per batch with the batch's count: the
hot path pays one locked add per batch, not one per record.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, prefix: str, *, runtime: bool = False) -> None:
        """`runtime` adds the process, platform and GC collectors: what an operator expects
        from a service's /metrics, left out of tests that only count."""
        self._prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
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
