from clickstream_enricher.offsets import OffsetTracker

P = ("click", 0)


def test_commits_next_offset_after_done_records():
    tracker = OffsetTracker()
    tracker.done(P, 0)
    tracker.done(P, 1)
    assert tracker.committable() == {P: 2}


def test_held_record_pins_the_commit_until_released():
    tracker = OffsetTracker()
    tracker.done(P, 0)
    tracker.hold(P, 1)
    tracker.done(P, 2)
    assert tracker.committable() == {P: 1}
    tracker.mark_committed({P: 1})
    assert tracker.committable() == {}
    tracker.release(P, 1)
    assert tracker.committable() == {P: 3}


def test_forget_clears_a_revoked_partition():
    tracker = OffsetTracker()
    tracker.hold(P, 4)
    tracker.forget([P])
    assert tracker.committable() == {}
