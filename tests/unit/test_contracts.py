import orjson
import pytest
from clickstream_common.contracts import (
    BadRecord,
    decode_click,
    decode_user,
    event_id,
    format_event_time,
    parse_event_time,
)
from clickstream_common.dead_letter import dead_letter
from clickstream_common.records import Record


def record(value, key=b"1", topic="click", timestamp_ms=1_700_000_000_000):
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    return Record(topic, 0, 7, key, raw, timestamp_ms)


CLICK = {"user_id": "1", "page": 5535, "action": "selection", "device": "computer", "agent": "x"}


def test_click_without_event_time_takes_the_record_timestamp():
    click = decode_click(record(CLICK))
    assert click.event_time_ms == 1_700_000_000_000
    assert click.page == 5535


def test_click_event_time_wins_over_the_record_timestamp():
    assert decode_click(record({**CLICK, "event_time": 42})).event_time_ms == 42


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (None, "null value"),
        ({k: v for k, v in CLICK.items() if k != "page"}, "missing field: page"),
        ({**CLICK, "page": "5535"}, "wrong type: page"),
        ({**CLICK, "page": True}, "wrong type: page"),
        ({**CLICK, "action": 3}, "wrong type: action"),
        ({**CLICK, "user_id": ""}, "empty user_id"),
        ({**CLICK, "event_time": -1}, "wrong type: event_time"),
        ({**CLICK, "agent": "x" * 70_000}, "oversized"),
    ],
)
def test_bad_clicks_are_refused_with_a_reason(value, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_click(record(value))


def test_click_without_a_key_is_refused():
    with pytest.raises(BadRecord, match="null key"):
        decode_click(record(CLICK, key=None))


def test_user_level_is_upper_cased_and_tombstone_is_none():
    user = decode_user(record({"user_id": "1", "name": "A", "level": "platinum"}))
    assert user is not None and user.level == "PLATINUM"
    assert decode_user(record(None)) is None


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (None, {"user_id": "1", "name": "A", "level": "GOLD"}, "null key"),
        (b"2", {"user_id": "1", "name": "A", "level": "GOLD"}, "key does not match"),
        (b"1", {"user_id": "1", "level": "GOLD"}, "missing field: name"),
    ],
)
def test_bad_users_are_refused(key, value, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_user(record(value, key=key))


def test_event_time_format_round_trips_with_milliseconds():
    text = format_event_time(1_764_276_743_123)
    assert text == "2025-11-27T20:52:23.123Z"
    assert parse_event_time(text) == 1_764_276_743_123


def test_event_id_is_deterministic_per_source_record():
    assert event_id("click", 1, 2) == event_id("click", 1, 2)
    assert event_id("click", 1, 2) != event_id("click", 1, 3)
    assert event_id("click", 1, 2) != event_id("click", 2, 2)


def test_dead_letter_keeps_the_record_and_names_its_source():
    source = Record("click", 3, 99, b"k", b"v", 1, (("trace", b"abc"),))
    out = dead_letter(source, "not JSON")
    assert (out.topic, out.key, out.value) == ("click.dlq", b"k", b"v")
    headers = dict(out.headers)
    assert headers["trace"] == "abc"
    assert headers["dlq.source.topic"] == "click"
    assert headers["dlq.source.partition"] == "3"
    assert headers["dlq.source.offset"] == "99"
    assert headers["dlq.error"] == "not JSON"
