"""Process-wide memory settings around the restore: the cyclic garbage collector, and memory
handed back to the operating system once it is done.

During the restore nearly every object made is either short-lived and freed by its reference
count, or part of the table and never freed; the collector finds no cycles, yet each full pass
walks the whole growing table (a micro run of the restore loop at 1,000,000 users: 118,000
records/s with the collector on, 166,000 with it off). So it is paused until the table has caught
up, and the table is then frozen out of later passes, which would walk it for nothing too.
Afterwards glibc keeps much of what the restore freed mapped (librdkafka's fetch buffers, the
decoded records); the resident size, which a container's memory limit counts, stays that much
higher unless it is trimmed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

from clickstream_common.gc_pauses import freeze_startup_heap


def pause_collection() -> None:
    """Before the restore: reference counting alone frees what it makes and drops."""
    gc.disable()


def settle_after_restore() -> None:
    """Once caught up: collect once, freeze what survives out of later passes, trim the heap."""
    gc.enable()
    freeze_startup_heap()
    release_free_memory()


def release_free_memory() -> None:
    """`malloc_trim(0)` where the C library is glibc; elsewhere nothing (it is only a saving)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        trim = None
    if trim is not None:
        trim(0)
