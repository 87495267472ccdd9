"""Graceful shutdown: SIGTERM and SIGINT set one event the main loop watches."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from clickstream_common.logging import get_logger

log = get_logger(__name__)


class Shutdown:
    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _: FrameType | None) -> None:
        log.info("shutdown requested", signal=signal.Signals(signum).name)
        self._event.set()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)
