"""user-state's lookup contract, defined once: the JSON bodies of `POST /v1/lookup`,
`GET /v1/users/{user_id}` and `GET /v1/users?level=` as typed msgspec Structs.

user-state decodes requests and encodes answers with these, the enricher's client does the
reverse, and the OpenAPI document's schemas are generated from them, so the wire, the validation
and the documentation cannot drift apart. No client or server code here: the contract only.

Answers are read tolerantly (an unknown field is ignored, as `beyond_history` once was by older
clients); requests are read strictly (an unknown field is a 400).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta, Struct

from clickstream_common.contracts import MAX_USER_ID_CHARS

MAX_KEYS_PER_LOOKUP: Final = 100_000
# Event times and limits are signed 64-bit integers, in JSON bodies and in query strings alike.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Past this a float may be a rounded integer outside the 64-bit range.
_EXACT_FLOAT_INT: Final = 2**53

Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
Count = Annotated[int, Meta(ge=0)]
# (user_id, event time in epoch ms, or None for the current version)
Key = tuple[str, Int64 | None]


class Found(StrEnum):
    """found: the user, as of the event time. unknown: never seen, so the user may still be on
    its way and the click is worth holding back. absent: deleted at the event time, or first seen
    after it: waiting cannot change the answer. The enricher acts differently on each."""

    FOUND = "found"
    UNKNOWN = "unknown"
    ABSENT = "absent"


class User(Struct, gc=False):
    """A user's fields on the wire (`clickstream_common.contracts.User` in the code). Strings
    only, so the collector need not track it (`gc=False`): user-state makes one per key."""

    user_id: Annotated[str, Meta(min_length=1, max_length=MAX_USER_ID_CHARS)]
    name: str
    level: Annotated[str, Meta(min_length=1)]


class LookupRequest(Struct, forbid_unknown_fields=True):
    """Many (user_id, event time) pairs in one request: one round trip per batch of clicks."""

    keys: Annotated[
        list[Key],
        Meta(
            max_length=MAX_KEYS_PER_LOOKUP,
            description="Pairs of user_id and event time (epoch ms, or null for the current "
            "version).",
        ),
    ]


class LookupResult(Struct, omit_defaults=True, gc=False):
    """The answer for one key; `user` is null unless `found` is found. No cycles (`gc=False`)."""

    found: Found
    user: User | None
    beyond_history: Annotated[
        bool,
        Meta(
            description="Present when the event time predates the retained history and the "
            "oldest version answered."
        ),
    ] = False


class LookupResponse(Struct):
    results: Annotated[
        list[LookupResult], Meta(description="One per key, in the order of the keys.")
    ]


class LevelCounts(Struct):
    """`GET /v1/users` without a level: how many current users each level has."""

    levels: dict[str, int]
    count: Count


class UsersOfLevel(Struct):
    """`GET /v1/users?level=`: the seed's "who are our high status customers"."""

    level: str
    count: Annotated[Count, Meta(description="All users of the level, also past `limit`.")]
    users: list[User]


# The Structs of the routes' bodies, for the OpenAPI document (their referenced types follow).
SCHEMA_TYPES: Final = (LookupRequest, LookupResponse, LookupResult, User, LevelCounts, UsersOfLevel)


class BadLookup(ValueError):
    """A lookup request off the contract; the message is the 400's reason."""


_BODY_SHAPE: Final = 'body must be {"keys": [[user_id, event_time_ms or null], ...]}'
_KEY_AT = re.compile(r"at `\$\.keys\[(\d+)\]")
_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(LookupRequest)


def encode_request(keys: Sequence[Key]) -> bytes:
    return _encoder.encode(LookupRequest(keys if isinstance(keys, list) else list(keys)))


def decode_request(body: bytes) -> list[Key]:
    """The keys, or `BadLookup` naming the first thing wrong."""
    try:
        return _request_decoder.decode(body).keys
    except msgspec.ValidationError as exc:
        if "got `float`" not in str(exc):
            raise BadLookup(_reason(exc)) from None
    except msgspec.DecodeError:
        raise BadLookup("body is not JSON") from None
    return _with_integral_floats(body)


def _with_integral_floats(body: bytes) -> list[Key]:
    """JSON has one number type: 1.0 is the integer 1 (and JSON Schema agrees). The rare request
    written that way is read generically, its integral floats made ints, then checked as usual."""
    try:
        payload: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise BadLookup("body is not JSON") from None
    keys = payload.get("keys") if isinstance(payload, dict) else None
    for key in keys if isinstance(keys, list) else ():
        if isinstance(key, list) and len(key) == 2:
            at = key[1]
            if type(at) is float and at.is_integer() and abs(at) <= _EXACT_FLOAT_INT:
                key[1] = int(at)
    try:
        return msgspec.convert(payload, LookupRequest).keys
    except msgspec.ValidationError as exc:
        raise BadLookup(_reason(exc)) from None


def _reason(error: msgspec.ValidationError) -> str:
    text = str(error)
    key = _KEY_AT.search(text)
    if key is not None:
        return f"keys[{key[1]}] must be [user_id, event_time_ms or null]"
    if text.endswith("at `$.keys`") and "length <=" in text:
        return f"at most {MAX_KEYS_PER_LOOKUP} keys per lookup"
    return _BODY_SHAPE


def encode_answer(answer: LookupResponse | LookupResult | LevelCounts | UsersOfLevel) -> bytes:
    return _encoder.encode(answer)
