"""The generator's data: reproducible, realistic, and mixing the cases downstream must handle."""

from __future__ import annotations

import re
from collections import Counter
from itertools import islice

import pytest
from clickstream_common.contracts import LEVELS, BadRecord, decode_click, decode_json, decode_user
from clickstream_common.records import Record
from clickstream_generator.data import (
    ACTIONS,
    AGENTS,
    DEVICES,
    ClickKind,
    DataConfig,
    clicks,
    user_records,
    users,
)

SSN_LIKE = re.compile(r"^\d{3}-\d{2}-\d{4}$")


def _record(key: bytes, value: bytes, offset: int = 0, topic: str = "click") -> Record:
    return Record(topic=topic, partition=0, offset=offset, key=key, value=value, timestamp_ms=1)


def _take(config: DataConfig, n: int) -> list[tuple[bytes, bytes, ClickKind]]:
    return [(c.key, c.value, c.kind) for c in islice(clicks(config, users(config)), n)]


def test_same_seed_and_config_give_identical_bytes():
    config = DataConfig(seed=7, users=200, malformed_share=0.1)
    assert users(config) == users(config)
    same = DataConfig(seed=7, users=200)
    assert list(user_records(users(config))) == list(user_records(users(same)))
    assert _take(config, 2000) == _take(DataConfig(seed=7, users=200, malformed_share=0.1), 2000)


def test_another_seed_gives_other_data():
    assert users(DataConfig(seed=1, users=50)) != users(DataConfig(seed=2, users=50))
    assert _take(DataConfig(seed=1, users=50), 50) != _take(DataConfig(seed=2, users=50), 50)


def test_more_users_extend_the_same_population():
    assert users(DataConfig(users=500))[:100] == users(DataConfig(users=100))


def test_user_ids_are_unique_and_ssn_like():
    rows = users(DataConfig(users=20_000))
    ids = [row["user_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 20_000
    assert all(SSN_LIKE.match(user_id) for user_id in ids)
    assert not any(user_id.startswith(("000", "666")) for user_id in ids)


def test_users_meet_the_contract_and_look_real():
    rows = users(DataConfig(users=2000))
    for key, value in user_records(rows):
        user = decode_user(_record(key, value, topic="user"))
        assert user is not None and user.level in LEVELS
        assert re.match(r"^(Dr\. )?[A-Z][a-z]+ [A-Z][a-z]+$", user.name)
    doctors = sum(row["name"].startswith("Dr. ") for row in rows)
    assert 0 < doctors < len(rows) // 4


def test_level_weights_are_respected_on_a_large_sample():
    weights = {"BRONZE": 40.0, "SILVER": 30.0, "GOLD": 20.0, "PLATINUM": 10.0}
    rows = users(DataConfig(users=50_000, level_weights=weights))
    counts = Counter(row["level"] for row in rows)
    for level, weight in weights.items():
        assert counts[level] / len(rows) == pytest.approx(weight / 100, abs=0.01)


def test_zero_weight_levels_never_appear():
    rows = users(DataConfig(users=5000, level_weights={"PLATINUM": 1.0, "GOLD": 3.0}))
    assert {row["level"] for row in rows} == {"PLATINUM", "GOLD"}


def test_clicks_meet_the_contract_and_are_keyed_by_user():
    config = DataConfig(users=300)
    for offset, (key, value, kind) in enumerate(_take(config, 5000)):
        click = decode_click(_record(key, value, offset))
        assert kind is not ClickKind.MALFORMED
        assert key == click.user_id.encode()
        assert 1 <= click.page <= 65535
        assert click.action in ACTIONS and click.device in DEVICES and click.agent in AGENTS
        assert set(decode_json(value)) == {"user_id", "page", "action", "device", "agent"}


def test_unknown_share_is_respected_and_unknown_ids_are_disjoint():
    config = DataConfig(users=1000, unknown_user_share=0.2)
    known = {row["user_id"] for row in users(config)}
    sample = _take(config, 20_000)
    unknown = [key.decode() for key, _, kind in sample if kind is ClickKind.UNKNOWN]
    assert len(unknown) / len(sample) == pytest.approx(0.2, abs=0.015)
    assert all(SSN_LIKE.match(user_id) and user_id not in known for user_id in unknown)
    for key, _, kind in sample:
        assert (key.decode() in known) == (kind is ClickKind.KNOWN)


def test_no_unknown_users_by_choice():
    config = DataConfig(users=100, unknown_user_share=0.0)
    assert all(kind is ClickKind.KNOWN for _, _, kind in _take(config, 5000))


def test_without_users_every_click_is_unknown():
    config = DataConfig(users=0)
    assert users(config) == []
    assert all(kind is ClickKind.UNKNOWN for _, _, kind in _take(config, 500))


def test_no_malformed_clicks_by_default():
    assert all(kind is not ClickKind.MALFORMED for _, _, kind in _take(DataConfig(), 10_000))


def test_malformed_clicks_fail_the_contract_and_keep_their_key():
    config = DataConfig(users=200, malformed_share=0.25)
    sample = _take(config, 8000)
    malformed = [(key, value) for key, value, kind in sample if kind is ClickKind.MALFORMED]
    assert len(malformed) / len(sample) == pytest.approx(0.25, abs=0.02)
    reasons = Counter()
    for offset, (key, value) in enumerate(malformed):
        assert SSN_LIKE.match(key.decode())
        with pytest.raises(BadRecord) as caught:
            decode_click(_record(key, value, offset))
        reasons[str(caught.value).split(":")[0]] += 1
    assert {"not JSON", "not a JSON object", "wrong type", "missing field"} <= set(reasons)
    for offset, (key, value, kind) in enumerate(sample):
        if kind is not ClickKind.MALFORMED:
            decode_click(_record(key, value, offset))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": -1},
        {"unknown_user_share": 1.5},
        {"malformed_share": -0.1},
        {"level_weights": {"DIAMOND": 1.0}},
        {"level_weights": {"GOLD": -1.0, "PLATINUM": 2.0}},
        {"level_weights": {"GOLD": 0.0}},
    ],
)
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        DataConfig(**kwargs)
