import pytest
from clickstream_common.settings import SettingsError
from clickstream_enricher.settings import Settings as EnricherSettings
from clickstream_rabbit_bridge.settings import Settings as BridgeSettings
from clickstream_user_state.settings import Settings as UserStateSettings


def test_defaults_follow_the_design_contracts():
    enricher = EnricherSettings.from_env({})
    assert (enricher.clicks_topic, enricher.vip_actions_topic) == ("click", "vip-action")
    assert (enricher.dead_letter_topic, enricher.unmatched_topic) == (
        "click.dlq",
        "click.unmatched",
    )
    assert enricher.join_mode == "as_of"
    assert enricher.query.join == "inner"
    bridge = BridgeSettings.from_env({})
    assert (bridge.topology.exchange, bridge.topology.queue) == ("vip-actions", "vip-actions")
    assert bridge.topology.binding_key == "#"
    user_state = UserStateSettings.from_env({})
    assert (user_state.users_topic, user_state.users_dlq_topic) == ("user", "user.dlq")


@pytest.mark.parametrize(
    ("settings", "environ", "named"),
    [
        (EnricherSettings, {"JOIN_MODE": "sometimes"}, "JOIN_MODE"),
        (EnricherSettings, {"JOIN_GRACE_MS": "soon"}, "JOIN_GRACE_MS"),
        (EnricherSettings, {"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        (EnricherSettings, {"HTTP_PORT": "70000"}, "HTTP_PORT"),
        (EnricherSettings, {"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        (EnricherSettings, {"ENRICHER_QUERY": "SELECT 1 FROM Clicks GROUP BY 1"}, "ENRICHER_QUERY"),
        (EnricherSettings, {"ENRICHER_QUERY_FILE": "/nonexistent.sql"}, "ENRICHER_QUERY_FILE"),
        (BridgeSettings, {"RABBITMQ_URL": "http://x"}, "RABBITMQ_URL"),
        (BridgeSettings, {"RABBITMQ_QUEUE_TYPE": "stream"}, "RABBITMQ_QUEUE_TYPE"),
        (UserStateSettings, {"USER_HISTORY_VERSIONS": "0"}, "USER_HISTORY_VERSIONS"),
        (EnricherSettings, {"KAFKA_SESSION_TIMEOUT_MS": "1000"}, "KAFKA_SESSION_TIMEOUT_MS"),
        (BridgeSettings, {"KAFKA_SESSION_TIMEOUT_MS": "soon"}, "KAFKA_SESSION_TIMEOUT_MS"),
        (EnricherSettings, {"VALUE_FORMAT": "protobuf"}, "VALUE_FORMAT"),
        (UserStateSettings, {"VALUE_FORMAT": "avro"}, "SCHEMA_REGISTRY_URL is required"),
        (BridgeSettings, {"SCHEMA_REGISTRY_URL": "registry:8081"}, "SCHEMA_REGISTRY_URL"),
        (EnricherSettings, {"AVRO_SCHEMA_DIR": "/nonexistent"}, "AVRO_SCHEMA_DIR"),
        (BridgeSettings, {"RABBITMQ_FORMAT": "avro"}, "RABBITMQ_FORMAT=avro needs VALUE_FORMAT"),
        (BridgeSettings, {"RABBITMQ_FORMAT": "xml"}, "RABBITMQ_FORMAT"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(settings, environ, named):
    with pytest.raises(SettingsError, match=named):
        settings.from_env(environ)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as caught:
        EnricherSettings.from_env({"JOIN_MODE": "x", "BATCH_SIZE": "y"})
    assert len(caught.value.problems) == 2


def test_query_must_insert_into_the_configured_output_stream():
    sql = (
        "INSERT INTO Elsewhere SELECT Clicks.page FROM Clicks "
        "JOIN Users ON Clicks.user_id = Users.user_id"
    )
    with pytest.raises(SettingsError, match="OUTPUT_STREAM"):
        EnricherSettings.from_env({"ENRICHER_QUERY": sql})


def test_query_can_come_from_a_file(tmp_path):
    path = tmp_path / "q.sql"
    path.write_text(
        "INSERT INTO VipActions SELECT Users.name AS who FROM Clicks c "
        "JOIN Users ON c.user_id = Users.user_id"
    )
    assert EnricherSettings.from_env({"ENRICHER_QUERY_FILE": str(path)}).query.columns == ("who",)


def test_the_rabbitmq_password_stays_out_of_the_settings_repr():
    settings = BridgeSettings.from_env({"RABBITMQ_URL": "amqp://u:s3cret@host/%2F"})
    assert "s3cret" not in repr(settings)


def test_the_group_session_timeout_is_librdkafkas_unless_set():
    assert EnricherSettings.from_env({}).kafka.session_timeout_ms == 45_000
    settings = BridgeSettings.from_env({"KAFKA_SESSION_TIMEOUT_MS": "10000"})
    assert settings.kafka.session_timeout_ms == 10_000


def test_offsets_are_sent_to_the_coordinator_every_100_ms_unless_set():
    assert EnricherSettings.from_env({}).kafka.commit_interval_ms == 100
    every_batch = BridgeSettings.from_env({"KAFKA_COMMIT_INTERVAL_MS": "0"})
    assert every_batch.kafka.commit_interval_ms == 0
    with pytest.raises(SettingsError, match="KAFKA_COMMIT_INTERVAL_MS"):
        BridgeSettings.from_env({"KAFKA_COMMIT_INTERVAL_MS": "-1"})


def test_rabbitmq_stays_json_unless_asked_and_avro_is_labelled_so():
    avro = {"VALUE_FORMAT": "avro", "SCHEMA_REGISTRY_URL": "http://registry:8181/apis/ccompat/v7"}
    json_bridge = BridgeSettings.from_env(avro)
    assert json_bridge.rabbit_json and json_bridge.topology.content_type == "application/json"
    avro_bridge = BridgeSettings.from_env({**avro, "RABBITMQ_FORMAT": "avro"})
    assert not avro_bridge.rabbit_json
    assert avro_bridge.topology.content_type == "application/vnd.confluent.avro"
