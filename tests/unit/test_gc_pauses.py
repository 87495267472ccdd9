"""freeze_startup_heap: what exists when it is called is out of the collector's reach after."""

from __future__ import annotations

import gc

from clickstream_common.gc_pauses import freeze_startup_heap


def test_objects_alive_at_start_up_are_frozen_and_later_ones_are_not() -> None:
    before = [[] for _ in range(100)]
    try:
        freeze_startup_heap()
        frozen = gc.get_freeze_count()
        after = [[] for _ in range(100)]
        assert frozen >= len(before)
        assert gc.get_freeze_count() == frozen, f"{len(after)} new objects were frozen too"
    finally:
        gc.unfreeze()
