"""The generator's settings: documented defaults, and every bad variable named."""

from __future__ import annotations

import pytest
from clickstream_common.settings import SettingsError
from clickstream_generator.settings import GeneratorSettings


def test_defaults():
    settings = GeneratorSettings.from_env({})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.users_topic == "user"
    assert settings.clicks_topic == "click"
    assert settings.topic_partitions == 4
    assert settings.users == 1000
    assert settings.clicks == 0
    assert settings.rate == 100.0
    assert settings.seed == 42
    assert dict(settings.level_weights) == {
        "BRONZE": 40.0,
        "SILVER": 30.0,
        "GOLD": 20.0,
        "PLATINUM": 10.0,
    }
    assert settings.unknown_user_share == 0.05
    assert settings.malformed_share == 0.0
    assert settings.observability.http_port == 8083


def test_values_are_read():
    settings = GeneratorSettings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            "USERS_TOPIC": "u",
            "CLICKS_TOPIC": "c",
            "TOPIC_PARTITIONS": "8",
            "GENERATOR_USERS": "10",
            "GENERATOR_CLICKS": "500",
            "GENERATOR_RATE": "0",
            "GENERATOR_SEED": "-3",
            "GENERATOR_LEVEL_WEIGHTS": " platinum = 1 , GOLD=2.5",
            "GENERATOR_UNKNOWN_USER_SHARE": "0",
            "GENERATOR_MALFORMED_SHARE": "1",
            "HTTP_PORT": "0",
        }
    )
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert (settings.users_topic, settings.clicks_topic) == ("u", "c")
    assert (settings.topic_partitions, settings.users, settings.clicks) == (8, 10, 500)
    assert (settings.rate, settings.seed) == (0.0, -3)
    assert dict(settings.level_weights) == {"PLATINUM": 1.0, "GOLD": 2.5}
    assert (settings.unknown_user_share, settings.malformed_share) == (0.0, 1.0)
    config = settings.data_config()
    assert (config.seed, config.users, config.malformed_share) == (-3, 10, 1.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOPIC_PARTITIONS", "0"),
        ("TOPIC_PARTITIONS", "four"),
        ("USERS_TOPIC", "bad topic"),
        ("CLICKS_TOPIC", "a/b"),
        ("GENERATOR_USERS", "0"),
        ("GENERATOR_USERS", "1e3"),
        ("GENERATOR_CLICKS", "-1"),
        ("GENERATOR_RATE", "abc"),
        ("GENERATOR_RATE", "-5"),
        ("GENERATOR_RATE", "nan"),
        ("GENERATOR_RATE", "inf"),
        ("GENERATOR_SEED", "x"),
        ("GENERATOR_LEVEL_WEIGHTS", "DIAMOND=1"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD=-1,PLATINUM=1"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD=0,PLATINUM=0"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD=1,gold=2"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD=heavy"),
        ("GENERATOR_LEVEL_WEIGHTS", "GOLD=inf"),
        ("GENERATOR_UNKNOWN_USER_SHARE", "1.5"),
        ("GENERATOR_UNKNOWN_USER_SHARE", "-0.1"),
        ("GENERATOR_MALFORMED_SHARE", "2"),
        ("GENERATOR_MALFORMED_SHARE", "lots"),
        ("HTTP_PORT", "70000"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        GeneratorSettings.from_env({name: value})
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(name)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        GeneratorSettings.from_env({"GENERATOR_RATE": "abc", "GENERATOR_USERS": "-1"})
    problems = " ".join(caught.value.problems)
    assert "GENERATOR_RATE" in problems and "GENERATOR_USERS" in problems


def test_topics_must_differ():
    with pytest.raises(SettingsError, match="USERS_TOPIC and CLICKS_TOPIC"):
        GeneratorSettings.from_env({"USERS_TOPIC": "same", "CLICKS_TOPIC": "same"})
