"""Users-topic records decoded straight into the fields the table stores.

Restoring a million users decodes a million records, so the usual shape (a well-formed user with
a known level) is checked here with as few steps and objects as possible. Anything else goes
through the contract's own `decode_user`, which accepts or refuses it with the reason: this fast
path only ever accepts what `decode_user` accepts, with the same fields.
"""

from __future__ import annotations

import orjson
from clickstream_common.contracts import (
    LEVELS,
    MAX_NAME_CHARS,
    MAX_RECORD_BYTES,
    MAX_USER_ID_CHARS,
    JsonObjects,
    ObjectReader,
    decode_user,
)
from clickstream_common.records import Record

# (user_id, name, level), level normalised: the stored form of a user.
UserFields = tuple[str, str, str]

# Level as written -> as stored (upper-case, interned), for levels decode_user has accepted.
# Bounded, because levels are data and a producer could write a new one per record.
_MAX_KNOWN_LEVELS = 256
_known_levels: dict[str, str] = {level: level for level in LEVELS}


def plain_json(reader: ObjectReader) -> ObjectReader | None:
    """None for the JSON format, which `decode_user_change` reads on its own faster path."""
    return None if isinstance(reader, JsonObjects) else reader


def decode_user_change(record: Record, reader: ObjectReader | None = None) -> UserFields | str:
    """The user's fields, or for a tombstone the bare user_id. Raises `BadRecord` like
    `decode_user`, for the same records and with the same reasons. `reader`: the topic's
    format when it is not JSON."""
    if reader is not None:
        user = decode_user(record, reader=reader)
        if user is None:
            assert record.key is not None  # decode_user refuses null keys
            return record.key.decode()
        return user.user_id, user.name, user.level
    key, value = record.key, record.value
    if key is not None and value is not None and len(value) <= MAX_RECORD_BYTES:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            obj = None
        if obj.__class__ is dict and len(obj) == 3:
            user_id = obj.get("user_id")
            name = obj.get("name")
            written_level = obj.get("level")
            # Three fields, each a string: exactly user_id, name and level, nothing else.
            if (
                user_id.__class__ is str
                and name.__class__ is str
                and written_level.__class__ is str
                and 0 < len(user_id) <= MAX_USER_ID_CHARS
                and len(name) <= MAX_NAME_CHARS
                and key == _utf8(user_id)
            ):
                level = _known_levels.get(written_level)
                if level is not None:
                    return user_id, name, level
    return _decode_strictly(record)


def _utf8(text: str) -> bytes | None:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: decode_user says what is wrong
        return None


def _decode_strictly(record: Record) -> UserFields | str:
    user = decode_user(record)
    if user is None:
        assert record.key is not None  # decode_user refuses null keys
        return record.key.decode()
    if len(_known_levels) < _MAX_KNOWN_LEVELS:
        written = orjson.loads(record.value or b"{}")["level"]
        _known_levels[written] = user.level
    return user.user_id, user.name, user.level
