import re

import orjson
import pytest
from clickstream_common.contracts import (
    MAX_ACTION_CHARS,
    MAX_AGENT_CHARS,
    MAX_DEVICE_CHARS,
    MAX_EVENT_TIME_MS,
    MAX_LEVEL_CHARS,
    MAX_NAME_CHARS,
    MAX_USER_ID_CHARS,
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
USER = {"user_id": "1", "name": "A", "level": "GOLD"}


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
        ({**CLICK, "event_time": 1.5}, "wrong type: event_time"),
        ({**CLICK, "event_time": MAX_EVENT_TIME_MS + 1}, "out of range: event_time"),
        ({**CLICK, "agent": "x" * 70_000}, "oversized"),
        ({**CLICK, "referrer": "x"}, "unknown field: referrer"),
        ({**CLICK, "name": "Ann"}, "unknown field: name"),
        ({**CLICK, "x" * 500: 1}, re.escape("unknown field: " + "x" * 64 + "...")),
        ({**CLICK, "tab\there": 1}, re.escape("unknown field: tab\\there")),
        (
            {**CLICK, "user_id": "u" * (MAX_USER_ID_CHARS + 1)},
            re.escape(f"too long: user_id ({MAX_USER_ID_CHARS + 1} chars > {MAX_USER_ID_CHARS})"),
        ),
        ({**CLICK, "action": "a" * (MAX_ACTION_CHARS + 1)}, "too long: action"),
        ({**CLICK, "device": "d" * (MAX_DEVICE_CHARS + 1)}, "too long: device"),
        ({**CLICK, "agent": "é" * (MAX_AGENT_CHARS + 1)}, "too long: agent"),
        (b'{"user_id": "1", "page": 1, "action": "\xff"}', "not UTF-8: invalid byte at offset 39"),
        (b"\xfe\xff{}", "not UTF-8"),
        (b'{"user_id": "\\ud800"}', "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_bad_clicks_are_refused_with_a_reason(value, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_click(record(value))


def test_not_json_and_not_utf8_are_different_reasons():
    with pytest.raises(BadRecord) as bad_json:
        decode_click(record(b'{"user_id": "1",'))
    with pytest.raises(BadRecord) as bad_utf8:
        decode_click(record(b'{"user_id": "\xc3\x28"}'))
    assert str(bad_json.value).startswith("not JSON")
    assert str(bad_utf8.value).startswith("not UTF-8")


def test_click_fields_at_their_limits_are_accepted():
    click = decode_click(
        record(
            {
                "user_id": "u" * MAX_USER_ID_CHARS,
                "page": 2**63,
                "action": "a" * MAX_ACTION_CHARS,
                "device": "d" * MAX_DEVICE_CHARS,
                "agent": "é" * MAX_AGENT_CHARS,
                "event_time": MAX_EVENT_TIME_MS,
            }
        )
    )
    assert click.as_row()["event_time"] == "9999-12-31T23:59:59.999Z"
    assert len(click.agent) == MAX_AGENT_CHARS


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
        (b"1", {"user_id": "1", "name": "A", "level": ""}, "empty level"),
        (b"1", {"user_id": "1", "name": "A", "level": "  "}, "empty level"),
        (b"1", {"user_id": "1", "name": "A", "level": None}, "missing field: level"),
        (b"1", {"user_id": "1", "name": "A", "level": 3}, "wrong type: level"),
        (b"1", {**USER, "email": "a@example.com"}, "unknown field: email"),
        (b"1", {**USER, "page": 1}, "unknown field: page"),
        (
            b"1",
            {**USER, "name": "n" * (MAX_NAME_CHARS + 1)},
            re.escape(f"too long: name ({MAX_NAME_CHARS + 1} chars > {MAX_NAME_CHARS})"),
        ),
        (b"1", {**USER, "level": "L" * (MAX_LEVEL_CHARS + 1)}, "too long: level"),
        (
            b"u" * (MAX_USER_ID_CHARS + 1),
            {**USER, "user_id": "u" * (MAX_USER_ID_CHARS + 1)},
            "too long: key",
        ),
        (b"\xff", USER, "key is not UTF-8: invalid byte at offset 0"),
        (b"1", b'{"user_id": "1", "name": "\xed\xa0\x80", "level": "GOLD"}', "not UTF-8"),
        (b"1", b'{"user_id": "1", "name": "A", "level": "GOLD"', "not JSON"),
    ],
)
def test_bad_users_are_refused(key, value, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_user(record(value, key=key))


def test_a_tombstone_with_a_non_utf8_key_is_refused():
    """user-state keys its table by the key's text: such a tombstone could not delete anything."""
    with pytest.raises(BadRecord, match="key is not UTF-8"):
        decode_user(record(None, key=b"\xc3"))


def test_unknown_levels_are_data_and_upper_cased():
    user = decode_user(record({**USER, "level": "diamond"}))
    assert user is not None and user.level == "DIAMOND"


def test_user_fields_at_their_limits_are_accepted():
    user_id = "ü" * MAX_USER_ID_CHARS
    value = {"user_id": user_id, "name": "n" * MAX_NAME_CHARS, "level": "l" * MAX_LEVEL_CHARS}
    user = decode_user(record(value, key=user_id.encode()))
    assert user is not None and user.user_id == user_id


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
