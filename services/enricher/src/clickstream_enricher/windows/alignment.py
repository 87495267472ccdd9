"""Where fixed windows start: on the business time zone's wall clock, as Flink aligns windows
with `table.local-time-zone`, so a one-day TUMBLE is one business day (23 or 25 hours across a
daylight-saving change)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from clickstream_enricher.windows.spec import Hop, Tumble

_CACHE_LIMIT = 4096


class Alignment:
    """Windows of a `Tumble` or `Hop` spec, as (start, end) epoch milliseconds."""

    def __init__(self, spec: Tumble | Hop, zone: ZoneInfo | None = None) -> None:
        self._size = spec.size_ms
        self._slide = spec.slide_ms if isinstance(spec, Hop) else spec.size_ms
        self._zone = None if zone is None or zone.key == "UTC" else zone
        self._to_utc: dict[int, int] = {}
        self._offsets: dict[int, int] = {}

    def windows(self, event_ms: int) -> list[tuple[int, int]]:
        """Every window containing `event_ms`, latest start first."""
        local = self._local(event_ms)
        start = local - local % self._slide
        out = []
        while start + self._size > local:
            out.append((self._utc(start), self._utc(start + self._size)))
            start -= self._slide
        return out

    def _local(self, epoch_ms: int) -> int:
        if self._zone is None:
            return epoch_ms
        # Zones change their offset on a minute boundary: one lookup per minute of event time.
        minute = epoch_ms // 60_000
        offset = self._offsets.get(minute)
        if offset is None:
            delta = datetime.fromtimestamp(minute * 60, tz=self._zone).utcoffset()
            assert delta is not None
            offset = int(delta.total_seconds() * 1000)
            if len(self._offsets) >= _CACHE_LIMIT:
                self._offsets.clear()
            self._offsets[minute] = offset
        return epoch_ms + offset

    def _utc(self, local_ms: int) -> int:
        """The instant the business zone's wall clock reads `local_ms` (the earlier one, if the
        clock reads it twice)."""
        if self._zone is None:
            return local_ms
        cached = self._to_utc.get(local_ms)
        if cached is None:
            wall = datetime.fromtimestamp(local_ms / 1000, tz=UTC).replace(tzinfo=self._zone)
            cached = int(wall.timestamp() * 1000)
            if len(self._to_utc) >= _CACHE_LIMIT:
                self._to_utc.clear()
            self._to_utc[local_ms] = cached
        return cached
