"""The collector is off during the restore and back on, with the table frozen out, after it."""

from __future__ import annotations

import gc

from clickstream_user_state.memory import pause_collection, settle_after_restore


def test_collection_pauses_for_the_restore_and_resumes_with_survivors_frozen() -> None:
    assert gc.isenabled()
    table = {str(i): [i] for i in range(1000)}  # tracked objects that outlive the restore
    try:
        pause_collection()
        assert not gc.isenabled()
        settle_after_restore()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(table)
    finally:
        gc.unfreeze()
        gc.enable()
