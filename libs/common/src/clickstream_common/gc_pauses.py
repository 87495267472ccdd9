"""Keep the garbage collector's full collections short in a long-running service.

Everything a service allocates to start (imported modules, Kafka and RabbitMQ clients, the compiled
query) lives until it exits, yet every full collection walks all of it again: about 55,000 objects
and 35 ms of pause, measured on the bench machine, landing on whichever record is in flight then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_startup_heap() -> None:
    """Collect once, then move every surviving object into the permanent generation, which
    collections skip; objects made later are collected as usual. Call once start-up is done."""
    gc.collect()
    gc.freeze()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Around a bulk load of long-lived objects with no cycles (state restored from a
    changelog): every collection would walk the growing heap and find nothing to free (100,000
    sessions restored at 66,000 records/s with the collector on, 146,000 with it off). What
    survives is then frozen out of later passes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        freeze_startup_heap()
