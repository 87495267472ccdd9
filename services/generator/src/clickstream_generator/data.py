"""Realistic users and clicks shaped like the seed's examples, reproducible from a seed.

Pure and client-free so tests and benchmarks feed the very same records the service produces.
Every draw comes from a `random.Random` owned by the call, never the global one, so the same seed
and config always yield the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, TypedDict

from clickstream_common.contracts import LEVELS, encode_json
from clickstream_common.formats import RowWriter

DEFAULT_LEVEL_WEIGHTS: Mapping[str, float] = {
    "BRONZE": 40.0,
    "SILVER": 30.0,
    "GOLD": 20.0,
    "PLATINUM": 10.0,
}

ACTIONS = ("selection", "checkout", "products", "product_detail", "cart", "search", "home")
DEVICES = ("computer", "tablet", "mobile")
MAX_PAGE = 65535
# The id an Avro flaw names: far past what any registry hands out.
UNKNOWN_SCHEMA_ID = 2_000_000_000
DOCTOR_SHARE = 0.08

FIRST_NAMES = (
    "Olympia", "Leah", "Steven", "Karine", "Akiko", "Kassie", "Maria", "James", "Aiko", "Omar",
    "Fatima", "Lucas", "Sofia", "Liam", "Amara", "Noah", "Ingrid", "Mateo", "Priya", "Elijah",
    "Chen", "Hannah", "Diego", "Zoe", "Tobias", "Yara", "Felix", "Nadia", "Rafael", "Greta",
    "Kwame", "Isla", "Ravi", "Chloe", "Marcus", "Leila", "Hugo", "Mei", "Dmitri", "Ana",
    "Jamal", "Elena", "Sven", "Lucia", "Kenji", "Olivia", "Tariq", "Freya", "Emeka", "Camille",
)  # fmt: skip
LAST_NAMES = (
    "Koss", "Daniel", "Moore", "Boyle", "Hoppe", "Homenick", "Garcia", "Smith", "Tanaka", "Haddad",
    "Okafor", "Silva", "Rossi", "Murphy", "Nguyen", "Johnson", "Larsen", "Fernandez", "Patel",
    "Brown", "Wang", "Schmidt", "Lopez", "Walker", "Becker", "Khalil", "Novak", "Kowalski",
    "Mendes", "Andersson", "Mensah", "Campbell", "Sharma", "Dubois", "Carter", "Rahimi", "Moreau",
    "Li", "Ivanov", "Costa", "Williams", "Petrova", "Nilsson", "Romero", "Sato", "Taylor", "Aziz",
    "Jensen", "Eze", "Lefebvre",
)  # fmt: skip
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/56.0.2924.87 Safari/537.36 OPR/43.0.2442.991",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; WOW64; rv:50.0) Gecko/20100101 Firefox/50.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:7.0.1) Gecko/20100101 Firefox/7.0.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
)


class UserRow(TypedDict):
    user_id: str
    name: str
    level: str


class ClickKind(Enum):
    """Why a click exists, so the runner can count what downstream should do with it."""

    KNOWN = "known"  # from a generated user: joins
    UNKNOWN = "unknown"  # from an id no user has: ends in click.unmatched
    MALFORMED = "malformed"  # off-contract: ends in click.dlq


class KeyValue(NamedTuple):
    key: bytes
    value: bytes


class GeneratedClick(NamedTuple):
    key: bytes
    value: bytes
    kind: ClickKind


@dataclass(frozen=True)
class DataConfig:
    """What to generate; validated here too so library callers get the same guarantees."""

    seed: int = 42
    users: int = 1000
    level_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LEVEL_WEIGHTS))
    unknown_user_share: float = 0.05
    malformed_share: float = 0.0

    def __post_init__(self) -> None:
        if self.users < 0:
            raise ValueError(f"users must be >= 0, got {self.users}")
        for name, share in (
            ("unknown_user_share", self.unknown_user_share),
            ("malformed_share", self.malformed_share),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {share}")
        unknown = set(self.level_weights) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown levels {sorted(unknown)}; known: {', '.join(LEVELS)}")
        if any(weight < 0 for weight in self.level_weights.values()):
            raise ValueError("level weights must be non-negative")
        if sum(self.level_weights.values()) <= 0:
            raise ValueError("level weights must sum to more than 0")


def _stream(seed: int, purpose: str) -> random.Random:
    """Independent streams per purpose: more clicks never change the users, and vice versa."""
    return random.Random(f"clickstream-generator/{seed}/{purpose}")


def _ssn_like(rng: random.Random) -> str:
    """Area 001-899 without 666, group 01-99, serial 0001-9999, like real SSNs."""
    area = rng.randint(1, 898)
    if area >= 666:
        area += 1
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _name(rng: random.Random) -> str:
    prefix = "Dr. " if rng.random() < DOCTOR_SHARE else ""
    return f"{prefix}{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def users(config: DataConfig) -> list[UserRow]:
    """`config.users` users with unique ids, levels drawn by `config.level_weights`."""
    rng = _stream(config.seed, "users")
    levels = list(config.level_weights)
    weights = [config.level_weights[level] for level in levels]
    seen: set[str] = set()
    rows: list[UserRow] = []
    while len(rows) < config.users:
        user_id = _ssn_like(rng)
        if user_id in seen:
            continue
        seen.add(user_id)
        level = rng.choices(levels, weights)[0]
        rows.append({"user_id": user_id, "name": _name(rng), "level": level})
    return rows


def user_records(rows: Iterable[UserRow], encode: RowWriter = encode_json) -> Iterator[KeyValue]:
    """The users topic's wire form: key = user_id, value = the row (JSON unless `encode` is
    the topic's Avro writer)."""
    for row in rows:
        yield KeyValue(row["user_id"].encode(), encode(row))


def _click_row(rng: random.Random, user_id: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "page": rng.randint(1, MAX_PAGE),
        "action": rng.choice(ACTIONS),
        "device": rng.choice(DEVICES),
        "agent": rng.choice(AGENTS),
    }


def _malformed(rng: random.Random, row: dict[str, object], encode: RowWriter) -> bytes:
    """One of the ways a producer gets a click wrong; each must fail `decode_click`. For an Avro
    topic (whose `encode` writes the wire format's zero byte first), JSON is wrong too, and two
    more: a schema id no registry has, and a record cut short."""
    avro = encode is not encode_json
    flaw = rng.randrange(7 if avro else 5)
    if flaw == 5:
        good = encode(row)
        return good[:1] + UNKNOWN_SCHEMA_ID.to_bytes(4, "big") + good[5:]
    if flaw == 6:
        return encode(row)[:-4]
    if flaw == 0:
        return b"{not json: " + str(row["user_id"]).encode()
    if flaw == 1:
        return encode_json([row["user_id"], row["page"], row["action"]])
    broken = dict(row)
    if flaw == 2:
        broken["page"] = str(row["page"])
    elif flaw == 3:
        del broken[rng.choice(("user_id", "page", "action", "device", "agent"))]
    else:
        broken["event_time"] = "yesterday"
    return encode_json(broken)


def clicks(
    config: DataConfig, known: Sequence[UserRow], encode: RowWriter = encode_json
) -> Iterator[GeneratedClick]:
    """An endless click stream keyed by user_id; take as many as needed with `islice`.

    `config.unknown_user_share` of the clicks carry ids disjoint from `known` (same format), and
    `config.malformed_share` are off-contract. With no known users every valid click is unknown.
    """
    rng = _stream(config.seed, "clicks")
    ids = [row["user_id"] for row in known]
    taken = set(ids)
    while True:
        malformed = rng.random() < config.malformed_share
        if ids and rng.random() >= config.unknown_user_share:
            user_id, kind = rng.choice(ids), ClickKind.KNOWN
        else:
            user_id, kind = _ssn_like(rng), ClickKind.UNKNOWN
            while user_id in taken:
                user_id = _ssn_like(rng)
        row = _click_row(rng, user_id)
        if malformed:
            yield GeneratedClick(
                user_id.encode(), _malformed(rng, row, encode), ClickKind.MALFORMED
            )
        else:
            yield GeneratedClick(user_id.encode(), encode(row), kind)
