"""Counters and gauges rendered in the Prometheus text format.

Services bump them once per batch, not per message, so a plain lock costs nothing measurable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Metrics:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._gauges: dict[str, Callable[[], float]] = {}
        self._help: dict[str, str] = {}

    def counter(self, name: str, help_text: str) -> None:
        with self._lock:
            self._counters.setdefault(name, 0)
            self._help[name] = help_text

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        with self._lock:
            self._gauges[name] = read
            self._help[name] = help_text

    def inc(self, name: str, amount: int = 1) -> None:
        if amount:
            with self._lock:
                self._counters[name] = self._counters.get(name, 0) + amount

    def value(self, name: str) -> float:
        with self._lock:
            if name in self._counters:
                return self._counters[name]
            read = self._gauges[name]
        return read()

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            values: dict[str, float] = dict(self._counters)
            gauges = dict(self._gauges)
        values.update({name: read() for name, read in gauges.items()})
        return values

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = dict(self._counters)
            gauges = dict(self._gauges)
            help_texts = dict(self._help)
        for name, value in sorted(counters.items()):
            full = f"{self._prefix}_{name}_total"
            lines += [f"# HELP {full} {help_texts.get(name, '')}", f"# TYPE {full} counter"]
            lines.append(f"{full} {value}")
        for name, read in sorted(gauges.items()):
            full = f"{self._prefix}_{name}"
            lines += [f"# HELP {full} {help_texts.get(name, '')}", f"# TYPE {full} gauge"]
            lines.append(f"{full} {read()}")
        return "\n".join(lines) + "\n"
