"""The restore path's fast decoder must agree with the contract's `decode_user` on every record:
same fields when it accepts, same BadRecord reason when it refuses."""

from __future__ import annotations

import json
import os

import pytest
from clickstream_common.contracts import MAX_NAME_CHARS, MAX_USER_ID_CHARS, BadRecord, decode_user
from clickstream_common.records import Record
from clickstream_user_state.user_changes import decode_user_change
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def record(key: bytes | None, value: bytes | None) -> Record:
    return Record("user", 0, 7, key, value, 1_700_000_000_000)


def outcome(decode, rec: Record) -> object:
    """What a decoder makes of a record, in a form both decoders share."""
    try:
        result = decode(rec)
    except BadRecord as exc:
        return ("refused", str(exc))
    if result is None:  # decode_user's tombstone
        assert rec.key is not None
        return ("deleted", rec.key.decode())
    if isinstance(result, str):  # decode_user_change's tombstone
        return ("deleted", result)
    return ("user", tuple(result))


def assert_agrees(rec: Record) -> object:
    expected = outcome(decode_user, rec)
    assert outcome(decode_user_change, rec) == expected
    return expected


def user_json(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"1", user_json(user_id="1", name="Ann", level="GOLD")),
        (b"1", user_json(user_id="1", name="Ann", level="gold")),  # normalised
        (b"1", user_json(user_id="1", name="Ann", level=" Gold ")),  # kept, upper-cased
        (b"1", user_json(user_id="1", name="Ann", level="diamond")),  # a level never seen
        (b"1", user_json(user_id="1", name="Ann", level="   ")),  # empty level
        (b"1", user_json(user_id="1", name="Ann", level="")),
        (b"1", user_json(user_id="1", name="Ann", level="x" * 65)),
        (b"2", user_json(user_id="1", name="Ann", level="GOLD")),  # key mismatch
        (None, user_json(user_id="1", name="Ann", level="GOLD")),
        (b"1", None),  # tombstone
        (b"\xff", None),
        (None, None),
        (b"1", user_json(user_id="1", name="Ann")),
        (b"1", user_json(user_id="1", name="Ann", level="GOLD", extra=1)),
        (b"1", user_json(user_id="1", name="Ann", nick="GOLD")),
        (b"1", user_json(user_id="1", name=["Ann"], level="GOLD")),
        (b"1", user_json(user_id="1", name="Ann", level=["GOLD"])),  # unhashable level
        (b"1", user_json(user_id="1", name="Ann", level={"a": 1})),
        (b"1", user_json(user_id=1, name="Ann", level="GOLD")),
        (b"", user_json(user_id="", name="Ann", level="GOLD")),
        (b"u" * 129, user_json(user_id="u" * 129, name="Ann", level="GOLD")),
        (b"u" * 128, user_json(user_id="u" * 128, name="A" * MAX_NAME_CHARS, level="GOLD")),
        (b"1", user_json(user_id="1", name="A" * (MAX_NAME_CHARS + 1), level="GOLD")),
        ("ü".encode(), user_json(user_id="ü", name="Üma", level="PLATINUM")),
        (b"\xed\xa0\x80", b'{"user_id": "\\ud800", "name": "A", "level": "GOLD"}'),
        (b"1", b'{"user_id": "1", "name": "A", "level": "GOLD", "name": "B"}'),
        (b"1", b"[1, 2, 3]"),
        (b"1", b"{oops"),
        (b"1", b"\xff\xfe"),
        (b"1", b" " * 70_000),
    ],
)
def test_agrees_with_the_contract(key: bytes | None, value: bytes | None) -> None:
    assert_agrees(record(key, value))


def test_fast_path_stores_normalised_interned_levels() -> None:
    first = decode_user_change(record(b"1", user_json(user_id="1", name="A", level="silver")))
    again = decode_user_change(record(b"2", user_json(user_id="2", name="B", level="silver")))
    assert not isinstance(first, str) and not isinstance(again, str)
    assert first[2] == "SILVER"
    assert first[2] is again[2]


def test_a_tombstone_is_its_key() -> None:
    assert decode_user_change(record("é".encode(), None)) == "é"


@FUZZ
@given(
    user_id=st.text(max_size=MAX_USER_ID_CHARS + 2),
    name=st.text(max_size=12) | st.integers() | st.none(),
    level=st.sampled_from(["GOLD", "gold", "Platinum ", "", " ", "ß", "ﬀ"]) | st.text(max_size=70),
    key_matches=st.booleans(),
    extra=st.dictionaries(st.sampled_from(["user_id", "name", "level", "x"]), st.text(max_size=3)),
)
def test_agrees_on_generated_users(user_id, name, level, key_matches, extra) -> None:
    fields = {"user_id": user_id, "name": name, "level": level, **extra}
    key = user_id.encode("utf-8", "surrogatepass") if key_matches else b"other"
    assert_agrees(record(key, json.dumps(fields).encode()))


@FUZZ
@given(key=st.none() | st.binary(max_size=10), value=st.none() | st.binary(max_size=80))
def test_agrees_on_arbitrary_bytes(key, value) -> None:
    assert_agrees(record(key, value))
