"""Property-based tests of the record decoders: whatever arrives on a topic, the only way a
decoder may fail is BadRecord (dead-lettered), and whatever it accepts meets the contract."""

from __future__ import annotations

import json
import os

import orjson
from clickstream_common.contracts import (
    CLICK_FIELDS,
    MAX_ACTION_CHARS,
    MAX_AGENT_CHARS,
    MAX_DEVICE_CHARS,
    MAX_EVENT_TIME_MS,
    MAX_LEVEL_CHARS,
    MAX_NAME_CHARS,
    MAX_RECORD_BYTES,
    MAX_USER_ID_CHARS,
    USER_FIELDS,
    BadRecord,
    Click,
    User,
    decode_click,
    decode_click_strictly,
    decode_user,
    encode_json,
    parse_event_time,
)
from clickstream_common.dead_letter import dead_letter
from clickstream_common.records import Record
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# Modest by default so the unit suite stays fast; FUZZ_EXAMPLES=20000 for a deeper search.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# JSON scalars as a producer might send them, including the awkward ones: huge integers, floats
# at the edges, empty and non-ASCII strings.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def texts_around(limit: int) -> st.SearchStrategy[str]:
    """Strings short, at and just past a length limit, ASCII or not."""
    return st.one_of(
        st.text(max_size=8),
        st.integers(min_value=limit - 1, max_value=limit + 1).flatmap(
            lambda n: st.sampled_from(["x", "é", "😀", " "]).map(lambda c: c * n)
        ),
    )


def field_values(good: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a plausible value for the field, sometimes anything JSON can hold."""
    return st.one_of(good, good, good, json_values)


click_like = st.fixed_dictionaries(
    {},
    optional={
        "user_id": field_values(texts_around(MAX_USER_ID_CHARS)),
        "page": field_values(st.integers(min_value=-(2**63), max_value=2**64 - 1)),
        "action": field_values(texts_around(MAX_ACTION_CHARS)),
        "device": field_values(texts_around(MAX_DEVICE_CHARS)),
        "agent": field_values(texts_around(MAX_AGENT_CHARS)),
        "event_time": field_values(st.integers(min_value=-1, max_value=MAX_EVENT_TIME_MS + 1)),
    },
) | st.builds(
    lambda base, extra: {**base, **extra},
    st.just({"user_id": "1", "page": 1, "action": "a", "device": "d", "agent": "g"}),
    st.dictionaries(st.text(max_size=80), json_values, max_size=2),
)

user_like = st.fixed_dictionaries(
    {},
    optional={
        "user_id": field_values(texts_around(MAX_USER_ID_CHARS)),
        "name": field_values(texts_around(MAX_NAME_CHARS)),
        "level": field_values(
            st.sampled_from(["PLATINUM", "gold", "", " ", "ß", "diamond"])
            | texts_around(MAX_LEVEL_CHARS)
        ),
    },
) | st.builds(
    lambda base, extra: {**base, **extra},
    st.just({"user_id": "1", "name": "Ann", "level": "GOLD"}),
    st.dictionaries(st.text(max_size=80), json_values, max_size=2),
)


def to_json(obj: object, ascii_only: bool) -> bytes:
    # The standard library writes integers of any size, which orjson would refuse to encode.
    return json.dumps(obj, ensure_ascii=ascii_only).encode()


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    """Overwrite bytes at some positions: truncated UTF-8, stray quotes, control characters."""
    out = bytearray(data)
    for position, byte in edits:
        if out:
            out[position % len(out)] = byte
    return bytes(out)


byte_edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3)
keys = st.one_of(st.none(), st.binary(max_size=140), st.text(max_size=140).map(str.encode))


def record(key: bytes | None, value: bytes | None, topic: str = "click") -> Record:
    return Record(topic, 0, 42, key, value, 1_700_000_000_000)


def check_reason(rec: Record, exc: BadRecord) -> None:
    """A reason is dead-letter material: short, non-empty, and a valid header value."""
    reason = str(exc)
    assert reason
    assert len(reason) < 1024, reason[:200]
    out = dead_letter(rec, reason)
    assert dict(out.headers)["dlq.error"].encode("utf-8")


def check_click(click: Click, rec: Record) -> None:
    assert type(click.user_id) is str and 0 < len(click.user_id) <= MAX_USER_ID_CHARS
    assert type(click.page) is int
    assert type(click.action) is str and len(click.action) <= MAX_ACTION_CHARS
    assert type(click.device) is str and len(click.device) <= MAX_DEVICE_CHARS
    assert type(click.agent) is str and len(click.agent) <= MAX_AGENT_CHARS
    assert type(click.event_time_ms) is int and 0 <= click.event_time_ms <= MAX_EVENT_TIME_MS
    assert rec.value is not None and len(rec.value) <= MAX_RECORD_BYTES
    source = orjson.loads(rec.value)
    assert set(source) <= CLICK_FIELDS
    row = click.as_row()  # what the enricher builds a VipAction from
    assert parse_event_time(str(row["event_time"])) == click.event_time_ms
    assert orjson.loads(encode_json(row))["page"] == click.page


def check_user(user: User | None, rec: Record) -> None:
    assert rec.key is not None
    if user is None:
        assert rec.value is None
        assert len(rec.key.decode("utf-8")) <= MAX_USER_ID_CHARS
        return
    assert rec.value is not None
    assert type(user.user_id) is str and 0 < len(user.user_id) <= MAX_USER_ID_CHARS
    assert rec.key == user.user_id.encode("utf-8")
    assert type(user.name) is str and len(user.name) <= MAX_NAME_CHARS
    assert type(user.level) is str and user.level.strip()
    source = orjson.loads(rec.value)
    assert set(source) <= USER_FIELDS
    assert user.level == source["level"].upper()
    assert len(source["level"]) <= MAX_LEVEL_CHARS
    encode_json(user.as_row())


def decode_click_checked(rec: Record) -> None:
    """Also holds decode_click's msgspec fast path to the strict checks: the same click, or the
    same refusal with the same reason."""
    try:
        strict: Click | str = decode_click_strictly(rec)
    except BadRecord as exc:
        strict = str(exc)
    try:
        click = decode_click(rec)
    except BadRecord as exc:
        check_reason(rec, exc)
        assert strict == str(exc)
    else:
        check_click(click, rec)
        assert strict == click


def decode_user_checked(rec: Record) -> None:
    try:
        user = decode_user(rec)
    except BadRecord as exc:
        check_reason(rec, exc)
    else:
        check_user(user, rec)


@FUZZ
@given(key=keys, value=st.one_of(st.none(), st.binary(max_size=300)))
@example(key=b"1", value=b'{"user_id": "1", "\xff": 1}')
@example(key=b"1", value=b"\xef\xbb\xbf{}")
def test_arbitrary_bytes_as_a_click(key, value):
    decode_click_checked(record(key, value))


@FUZZ
@given(key=keys, value=st.one_of(st.none(), st.binary(max_size=300)))
@example(key=b"\xff", value=None)
@example(key=b"\xc3", value=b'{"user_id": "\xc3", "name": "", "level": "x"}')
def test_arbitrary_bytes_as_a_user(key, value):
    decode_user_checked(record(key, value, topic="user"))


@FUZZ
@given(value=json_values, ascii_only=st.booleans())
def test_arbitrary_json_as_a_click_or_a_user(value, ascii_only):
    data = to_json(value, ascii_only)
    decode_click_checked(record(b"k", data))
    decode_user_checked(record(b"k", data, topic="user"))


@FUZZ
@given(obj=click_like, ascii_only=st.booleans(), edits=byte_edits)
def test_click_shaped_json(obj, ascii_only, edits):
    data = to_json(obj, ascii_only)
    decode_click_checked(record(b"k", data))
    decode_click_checked(record(b"k", mutate(data, edits)))


@FUZZ
@given(obj=user_like, ascii_only=st.booleans(), edits=byte_edits, key_matches=st.booleans())
def test_user_shaped_json(obj, ascii_only, edits, key_matches):
    user_id = obj.get("user_id")
    key = user_id.encode() if key_matches and isinstance(user_id, str) else b"1"
    data = to_json(obj, ascii_only)
    decode_user_checked(record(key, data, topic="user"))
    decode_user_checked(record(key, mutate(data, edits), topic="user"))
    decode_user_checked(record(mutate(key, edits), data, topic="user"))


@FUZZ
@given(obj=click_like)
def test_a_click_that_decodes_is_the_one_that_was_sent(obj):
    data = to_json(obj, ascii_only=False)
    try:
        click = decode_click(record(b"k", data))
    except BadRecord:
        return
    assert click.user_id == obj["user_id"]
    assert (click.page, click.action, click.device, click.agent) == (
        obj["page"],
        obj["action"],
        obj["device"],
        obj["agent"],
    )
    # A null event_time is an absent one: the record's timestamp stands in for both.
    sent = obj.get("event_time")
    assert click.event_time_ms == (1_700_000_000_000 if sent is None else sent)


def test_a_valid_json_click_takes_the_fast_path_in_the_json_format(monkeypatch):
    """The enricher reads through the JSON format object, not JSON_OBJECTS itself: a well-formed
    click must still be decoded by msgspec alone (the strict path made to fail here)."""
    import clickstream_common.contracts as contracts
    from clickstream_common.formats import JSON

    def refuse(*args: object, **kwargs: object) -> Click:
        raise AssertionError("the strict path ran for a valid click")

    monkeypatch.setattr(contracts, "decode_click_strictly", refuse)
    value = b'{"user_id":"u1","page":3,"action":"view","device":"mobile","agent":"a"}'
    click = decode_click(record(b"u1", value), reader=JSON)
    assert click == Click("u1", 3, "view", "mobile", "a", click.event_time_ms)
