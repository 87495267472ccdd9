"""Exactly-once pieces that are pure: the progress note kept with a commit, and the settings."""

import socket

import pytest
from clickstream_common.records import Position
from clickstream_common.settings import SettingsError
from clickstream_enricher.offsets import OffsetTracker, make_note, parse_note
from clickstream_enricher.settings import Settings

P = ("click", 0)


def test_note_round_trip():
    note, truncated = make_note(100, 160, [100, 103, 150])
    assert (note, truncated) == ("v1:60:3,47", False)
    assert parse_note(100, note) == (160, frozenset({100, 103, 150}))


@pytest.mark.parametrize(
    "note", ["", "v0:3:", "v1:x:", "v1:3", "v1:3:0", "v1:3:-1", "v1:2:2", "v1:3:1:2"]
)
def test_a_note_not_written_by_us_is_ignored(note):
    assert parse_note(10, note) is None


def test_a_note_too_long_claims_nothing_past_where_it_stops():
    held = list(range(0, 20_000, 2))  # every other offset held: 10,000 of them
    note, truncated = make_note(0, 20_000, held, limit=100)
    assert truncated and len(note) <= 100
    end, kept = parse_note(0, note)
    assert end in held and end not in kept  # stops at a held offset, which is read again
    assert kept == frozenset(h for h in held if h < end)


def test_without_notes_positions_are_plain_offsets():
    tracker = OffsetTracker()
    tracker.hold(P, 1)
    tracker.done(P, 2)
    assert tracker.positions() == {P: Position(1)}


def test_with_notes_the_position_says_what_is_done_past_the_held_offset():
    tracker = OffsetTracker(notes=True)
    tracker.done(P, 0)
    tracker.hold(P, 1)
    tracker.done(P, 2)
    tracker.hold(P, 3)
    tracker.done(P, 4)
    assert tracker.positions() == {P: Position(1, "v1:4:2")}
    tracker.mark_committed(tracker.positions())
    assert tracker.positions() == {}
    tracker.release(P, 3)  # the note changes, the offset does not: it must be committed again
    assert tracker.positions() == {P: Position(1, "v1:4:")}


def test_restored_note_skips_done_offsets_and_keeps_held_ones_pinned():
    tracker = OffsetTracker(notes=True)
    assert tracker.restore(P, Position(1, "v1:4:2"))  # held 1 and 3, read up to 5
    assert tracker.positions() == {}  # nothing new to commit
    assert [tracker.admit(P, o) for o in (1, 2, 3, 4, 5)] == [True, False, True, False, True]
    # 1 and 3 were admitted: released, to be held again by the caller if still waiting.
    tracker.done(P, 5)
    assert tracker.positions() == {P: Position(6)}


def test_restored_note_without_a_note_is_a_plain_resume():
    tracker = OffsetTracker(notes=True)
    assert not tracker.restore(P, Position(7))
    assert tracker.admit(P, 7)


def test_delivery_defaults_to_at_least_once_and_the_transactional_id_to_group_and_host():
    settings = Settings.from_env({})
    assert settings.delivery == "at_least_once"
    assert settings.transactional_id == f"enricher-{socket.gethostname()}"
    settings = Settings.from_env(
        {"ENRICHER_DELIVERY": "exactly_once", "CONSUMER_GROUP": "g", "TRANSACTIONAL_ID": "g-0"}
    )
    assert (settings.delivery, settings.transactional_id) == ("exactly_once", "g-0")
    assert Settings.from_env({"CONSUMER_GROUP": "g"}).transactional_id.startswith("g-")


def test_a_bad_delivery_names_the_variable():
    with pytest.raises(SettingsError, match="ENRICHER_DELIVERY='twice'"):
        Settings.from_env({"ENRICHER_DELIVERY": "twice"})


def test_a_noted_held_offset_that_never_comes_back_stops_pinning():
    """The consumer may skip it (retention removed it): the commit must not stay behind it."""
    tracker = OffsetTracker(notes=True)
    tracker.restore(P, Position(1, "v1:4:2"))  # held 1 and 3
    assert tracker.admit(P, 1)
    tracker.hold(P, 1)  # still waiting for its user
    assert tracker.admit(P, 7)  # 2 to 6 never arrive
    tracker.done(P, 7)
    assert tracker.positions() == {P: Position(1, "v1:7:")}
    tracker.release(P, 1)
    assert tracker.positions() == {P: Position(8)}
