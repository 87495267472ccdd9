"""What goes out, how it settled, and the per-batch bookkeeping between the two.

The rabbit-bridge may commit a Kafka offset only once every message up to it is confirmed by
RabbitMQ and not returned (docs/ARCHITECTURE.md § Semantics 6), so a batch settles per index:
each message is either confirmed or failed with a reason, and the caller learns which.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REASON_CONNECTION_LOST = "connection lost"
REASON_CONFIRM_TIMEOUT = "confirm timeout"
REASON_NACKED = "nacked"


@dataclass(frozen=True)
class OutboundMessage:
    """One message to publish; `message_id` lets consumers deduplicate redeliveries."""

    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PublishOutcome:
    """How a batch settled; any failed index means its source offset must not be committed."""

    confirmed: int
    failed: tuple[tuple[int, str], ...]

    @property
    def ok(self) -> bool:
        return not self.failed


class Batch:
    """Settlement state of one publish_batch call, shared by the caller and the I/O thread."""

    def __init__(self, messages: Sequence[OutboundMessage]) -> None:
        self.messages = messages
        self.published = 0  # I/O thread only: how many are handed to pika so far
        self.done = threading.Event()
        # perf_counter when the last message settled: a caller may look later than that
        self.settled_at: float | None = None
        self._lock = threading.Lock()
        self._settled = bytearray(len(messages))
        self._remaining = len(messages)
        self._confirmed = 0
        self._failed: dict[int, str] = {}
        if not messages:
            self.settled_at = time.perf_counter()
            self.done.set()  # nothing to wait for

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    def settle(self, index: int, failure: str | None) -> None:
        with self._lock:
            if self._settled[index] or self.done.is_set():
                return
            self._settled[index] = 1
            self._remaining -= 1
            if failure is None:
                self._confirmed += 1
            else:
                self._failed[index] = failure
            if self._remaining == 0:
                self.settled_at = time.perf_counter()
                self.done.set()

    def fail_rest(self, reason: str) -> None:
        """Fail every index not settled yet; later confirms for this batch are ignored."""
        with self._lock:
            if self.done.is_set():
                return
            for index, settled in enumerate(self._settled):
                if not settled:
                    self._failed[index] = reason
            self._remaining = 0
            self.settled_at = time.perf_counter()
            self.done.set()

    def outcome(self) -> PublishOutcome:
        with self._lock:
            return PublishOutcome(self._confirmed, tuple(sorted(self._failed.items())))
