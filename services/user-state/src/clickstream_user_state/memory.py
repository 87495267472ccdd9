"""Hand memory freed during the restore back to the operating system.

The restore churns through every record of the users topic (librdkafka's fetch buffers, the
decoded records); once it is done, glibc keeps much of what was freed mapped, and the resident
size, which is what a container's memory limit counts, stays that much higher.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from clickstream_common.logging import get_logger

log = get_logger(__name__)


def release_free_memory() -> None:
    """`malloc_trim(0)` where the C library is glibc; elsewhere nothing (it is only a saving)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        trim = None
    if trim is not None:
        trim(0)
