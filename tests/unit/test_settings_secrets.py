"""Secrets from mounted files: `<NAME>_FILE`, and secrets kept out of reprs and error messages."""

import ssl

import pytest
from clickstream_common.rabbit.connection import parameters
from clickstream_common.settings import Env, KafkaSettings, SettingsError
from clickstream_rabbit_bridge.settings import Settings as BridgeSettings
from clickstream_user_state.settings import Settings as UserStateSettings

SECRET = "pa55-Zq9!x"


def test_a_secret_comes_from_its_variable():
    assert Env({"TOKEN": f"  {SECRET} "}).secret("TOKEN") == SECRET


def test_a_secret_comes_from_the_file_named_by_name_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"{SECRET}\n")
    env = Env({"TOKEN_FILE": str(path)})
    assert env.secret("TOKEN") == SECRET
    env.check()


def test_neither_set_gives_the_default():
    env = Env({"TOKEN": "  ", "TOKEN_FILE": ""})
    assert env.secret("TOKEN") is None
    assert env.secret("TOKEN", "fallback") == "fallback"
    env.check()


def test_both_set_is_an_error_naming_both_and_not_the_value(tmp_path):
    path = tmp_path / "token"
    path.write_text(SECRET)
    env = Env({"TOKEN": SECRET, "TOKEN_FILE": str(path)})
    env.secret("TOKEN")
    with pytest.raises(SettingsError, match="TOKEN and TOKEN_FILE are both set") as caught:
        env.check()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing", "cannot be read: No such file or directory"),
        (lambda tmp: tmp, "cannot be read: Is a directory"),
        (lambda tmp: _write(tmp / "f", b"x") / "sub", "cannot be read: Not a directory"),
        (lambda tmp: _write(tmp / "empty", b" \n"), "names an empty file"),
        (lambda tmp: _write(tmp / "latin1", b"caf\xe9"), "is not UTF-8 text"),
    ],
)
def test_an_unusable_file_is_an_error_naming_the_variable(tmp_path, make, reason):
    path = make(tmp_path)
    env = Env({"TOKEN_FILE": str(path)})
    assert env.secret("TOKEN") is None
    with pytest.raises(SettingsError, match=f"TOKEN_FILE=.* {reason}"):
        env.check()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("variable", ["KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"])
def test_kafka_passwords_come_from_files_and_stay_out_of_the_repr(tmp_path, variable):
    path = _write(tmp_path / "password", f"{SECRET}\n".encode())
    settings = KafkaSettings.read(Env({f"{variable}_FILE": str(path)}))
    option = {"KAFKA_SASL_PASSWORD": "sasl.password", "KAFKA_SSL_KEY_PASSWORD": "ssl.key.password"}
    assert settings.client_config()[option[variable]] == SECRET
    assert SECRET not in repr(settings)
    assert "***" in repr(settings)


def test_kafka_tls_client_certificate_options_pass_through():
    settings = KafkaSettings.read(
        Env(
            {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CA_LOCATION": "/etc/kafka/ca.pem",
                "KAFKA_SSL_CERTIFICATE_LOCATION": "/etc/kafka/client.pem",
                "KAFKA_SSL_KEY_LOCATION": "/etc/kafka/client.key",
                "KAFKA_SSL_KEY_PASSWORD": SECRET,
            }
        )
    )
    assert settings.client_config() == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/kafka/ca.pem",
        "ssl.certificate.location": "/etc/kafka/client.pem",
        "ssl.key.location": "/etc/kafka/client.key",
        "ssl.key.password": SECRET,
    }
    assert SECRET not in repr(settings)


def test_service_settings_reprs_never_show_the_kafka_password():
    settings = UserStateSettings.from_env({"KAFKA_SASL_PASSWORD": SECRET})
    assert settings.kafka.client_config()["sasl.password"] == SECRET
    assert SECRET not in repr(settings)


def test_the_bridge_reads_rabbitmq_url_from_a_file(tmp_path):
    url = f"amqps://bridge:{SECRET}@rabbit.example:5671/%2F"
    path = _write(tmp_path / "url", f"{url}\n".encode())
    settings = BridgeSettings.from_env({"RABBITMQ_URL_FILE": str(path)})
    assert settings.rabbitmq_url == url
    assert SECRET not in repr(settings)


def test_the_bridge_refuses_rabbitmq_url_and_its_file_together(tmp_path):
    path = _write(tmp_path / "url", b"amqp://u:p@h/%2F")
    with pytest.raises(SettingsError, match="RABBITMQ_URL and RABBITMQ_URL_FILE"):
        BridgeSettings.from_env(
            {"RABBITMQ_URL": "amqp://u:p@h/%2F", "RABBITMQ_URL_FILE": str(path)}
        )


def test_the_bridge_checks_a_url_from_a_file_without_echoing_it(tmp_path):
    path = _write(tmp_path / "url", f"http://u:{SECRET}@h/".encode())
    with pytest.raises(SettingsError, match="RABBITMQ_URL must start with") as caught:
        BridgeSettings.from_env({"RABBITMQ_URL_FILE": str(path)})
    assert SECRET not in str(caught.value)


def test_the_bridge_refuses_an_unreadable_ca_file(tmp_path):
    with pytest.raises(SettingsError, match="RABBITMQ_CA_FILE="):
        BridgeSettings.from_env({"RABBITMQ_CA_FILE": str(tmp_path / "nope.pem")})


def test_amqps_urls_get_a_verifying_tls_context():
    params = parameters(f"amqps://u:{SECRET}@rabbit.example/%2F", "test")
    assert params.port == 5671
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert parameters("amqp://u:p@rabbit.example/%2F", "test").ssl_options is None


def test_a_bad_rabbitmq_ca_file_is_named_in_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RABBITMQ_CA_FILE", str(_write(tmp_path / "ca.pem", b"not a cert")))
    with pytest.raises(ValueError, match="RABBITMQ_CA_FILE=") as caught:
        parameters(f"amqps://u:{SECRET}@rabbit.example/%2F", "test")
    assert SECRET not in str(caught.value)
