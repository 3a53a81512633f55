"""Configuration layers: defaults < file < environment < flags, validated."""

from __future__ import annotations

import pytest

from vibemuse.config import Config, ConfigError, load_config, read_config_file, write_initial_config


def test_defaults():
    config, path = load_config({}, {})
    assert config == Config()
    assert config.port == 4201 and config.server_name == "localhost"
    assert str(path) == "data/vibemuse.toml"
    assert config.resolved_database_url.startswith("sqlite:///") and config.resolved_database_url.endswith(
        "data/vibemuse.db"
    )


def test_layers_override_in_order(tmp_path):
    (tmp_path / "vibemuse.toml").write_text('port = 5000\nserver_name = "file.example"\nhost = "0.0.0.0"\n')
    env = {"VIBEMUSE_PORT": "6000", "VIBEMUSE_SERVER_NAME": "env.example", "UNRELATED": "x"}
    config, _ = load_config({"data_dir": str(tmp_path), "port": 7000}, env)
    assert (config.port, config.server_name, config.host) == (7000, "env.example", "0.0.0.0")
    config, _ = load_config({"data_dir": str(tmp_path)}, env)
    assert config.port == 6000
    config, _ = load_config({"data_dir": str(tmp_path)}, {})
    assert config.port == 5000


def test_explicit_config_file(tmp_path):
    path = tmp_path / "elsewhere.toml"
    path.write_text('server_name = "muse.example.org:8448"\n')
    config, found = load_config({"config": str(path)}, {})
    assert found == path and config.server_name == "muse.example.org:8448"
    with pytest.raises(ConfigError, match="no such config file"):
        load_config({"config": str(tmp_path / "missing.toml")}, {})


@pytest.mark.parametrize(
    "text, setting",
    [
        ("port = 70000", "port"),
        ('port = "many"', "port"),
        ('server_name = "bad name!"', "server_name"),
        ("colour = 3", "colour"),
        ("max_frame_bytes = 10", "max_frame_bytes"),
        ("heartbeat_interval_seconds = 30\nheartbeat_timeout_seconds = 10", "heartbeat_timeout_seconds"),
        ('log_level = "loud"', "log_level"),
        ("rate_limits = { login_account_address = [60, 0.1] }", "login_account"),  # one address would lock it
        ("rate_limits = { login_account = [4, 0.1] }", "login_account"),
        ("rate_limits = { login_account = [100, 0.001] }", "login_account"),
        ("max_connections = -1", "max_connections"),
        ('max_connections = "lots"', "max_connections"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path, text, setting):
    (tmp_path / "vibemuse.toml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=setting):
        load_config({"data_dir": str(tmp_path)}, {})


def test_broken_toml_is_reported(tmp_path):
    (tmp_path / "vibemuse.toml").write_text("port = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({"data_dir": str(tmp_path)}, {})


def test_login_limits_may_be_set_when_one_address_cannot_lock_an_account(tmp_path):
    (tmp_path / "vibemuse.toml").write_text("rate_limits = { login_account_address = [3, 0.01], "
                                            "login_account = [200, 0.5] }\n")
    config, _ = load_config({"data_dir": str(tmp_path)}, {})
    assert config.rate_limits["login_account"] == (200, 0.5)
    assert config.rate_limits["login_account_address"] == (3, 0.01)


def test_environment_values_are_converted(tmp_path):
    config, _ = load_config(
        {"data_dir": str(tmp_path)}, {"VIBEMUSE_AUTO_MIGRATE": "true", "VIBEMUSE_AUTH_TIMEOUT_SECONDS": "2.5"}
    )
    assert config.auto_migrate is True and config.auth_timeout_seconds == 2.5


def test_initial_config_round_trips(tmp_path):
    path = tmp_path / "vibemuse.toml"
    config = Config(server_name="muse.example.org", port=4444, data_dir=str(tmp_path))
    write_initial_config(path, config)
    assert read_config_file(path) == {"server_name": "muse.example.org", "host": "127.0.0.1", "port": 4444}
    loaded, _ = load_config({"data_dir": str(tmp_path)}, {})
    assert (loaded.server_name, loaded.port) == ("muse.example.org", 4444)


# -- federation: peers, the announced base URL, the discovery cache --------------------------


def test_federation_defaults():
    config, _ = load_config({}, {})
    assert config.federation is True and config.federation_peers == {}
    assert config.federation_discovery_cache_seconds == 3600
    assert config.public_base_url == "" and config.resolved_public_base_url == "http://127.0.0.1:4201"


def test_federation_peers_from_the_file_and_from_the_environment(tmp_path):
    (tmp_path / "vibemuse.toml").write_text(
        '[federation_peers]\n"beta.test" = "https://127.0.0.1:8448/"\n"[::1]:9000" = "http://[::1]:9000"\n')
    config, _ = load_config({"data_dir": str(tmp_path)}, {})
    assert config.federation_peers == {"beta.test": "https://127.0.0.1:8448", "[::1]:9000": "http://[::1]:9000"}
    env = {"VIBEMUSE_FEDERATION_PEERS": '{"gamma.test": "HTTP://127.0.0.1:5000/muse/"}',
           "VIBEMUSE_FEDERATION": "false"}
    config, _ = load_config({"data_dir": str(tmp_path)}, env)
    assert config.federation_peers == {"gamma.test": "http://127.0.0.1:5000/muse"} and config.federation is False


@pytest.mark.parametrize("value, why", [
    ('"beta.test"', "JSON object"),
    ('["beta.test"]', "table"),
    ('{ "bad name" = "https://x.test" }', "not a server name"),
    ('{ "beta.test:0" = "https://x.test" }', "not a server name"),
    ('{ "beta.test" = "ftp://x.test" }', "http"),
    ('{ "beta.test" = "x.test" }', "http"),
    ('{ "beta.test" = "https://x.test/?a=1" }', "no query"),
    ('{ "beta.test" = "https://me:pw@x.test" }', "user name"),
    ('{ "beta.test" = 5 }', "URL"),
])
def test_bad_federation_peers(tmp_path, value, why):
    (tmp_path / "vibemuse.toml").write_text(f"federation_peers = {value}\n")
    with pytest.raises(ConfigError, match=f"federation_peers: .*{why}"):
        load_config({"data_dir": str(tmp_path)}, {})


def test_federation_peers_in_the_environment_must_be_a_json_object():
    for value in ("beta.test=https://x.test", "[]", '{"beta.test": "x"}'):
        with pytest.raises(ConfigError, match="federation_peers"):
            load_config({}, {"VIBEMUSE_FEDERATION_PEERS": value})


@pytest.mark.parametrize("settings, url", [
    ({}, "http://127.0.0.1:4201"),
    ({"port": 80}, "http://127.0.0.1"),
    ({"host": "0.0.0.0", "server_name": "muse.example.org:8448"}, "http://muse.example.org:4201"),
    ({"host": "::", "server_name": "[2001:db8::1]:8448", "port": 443}, "http://[2001:db8::1]:443"),
    ({"host": "::1", "port": 8448}, "http://[::1]:8448"),
    ({"tls_certificate": "c.pem", "tls_key": "k.pem", "port": 443, "host": "muse.example.org"},
     "https://muse.example.org"),
    ({"public_base_url": "https://Muse.Example.org/vibe/"}, "https://Muse.Example.org/vibe"),
])
def test_public_base_url_is_set_or_derived_from_host_port_and_tls(settings, url):
    config, _ = load_config(settings, {})
    assert config.resolved_public_base_url == url


@pytest.mark.parametrize("settings, why", [
    ({"public_base_url": "muse.example.org"}, "http"),
    ({"public_base_url": "https://muse.example.org/?x"}, "no query"),
    ({"host": "bad_host"}, "set it"),
])
def test_bad_public_base_url(settings, why):
    with pytest.raises(ConfigError, match=f"public_base_url: .*{why}"):
        load_config(settings, {})


@pytest.mark.parametrize("value", ["0", "-1", "604801", "soon"])
def test_discovery_cache_seconds_range(value):
    with pytest.raises(ConfigError, match="federation_discovery_cache_seconds"):
        load_config({}, {"VIBEMUSE_FEDERATION_DISCOVERY_CACHE_SECONDS": value})


def test_every_setting_can_be_set_by_its_operator():
    """Each field of Config is a setting of the file and the environment (none forgotten in the schema)."""
    import dataclasses

    from vibemuse.config import ConfigSchema

    settings = {field.name for field in dataclasses.fields(Config)}
    assert settings <= set(ConfigSchema().fields)
    config, _ = load_config({}, environ={"VIBEMUSE_FEDERATION_PRIVATE_ADDRESSES": "true",
                                         "VIBEMUSE_FEDERATION_CHANNEL_QUEUE_SECONDS": "5"})
    assert (config.federation_private_addresses, config.federation_channel_queue_seconds) == (True, 5)


def test_operating_settings_from_the_file_and_the_environment(tmp_path):
    (tmp_path / "vibemuse.toml").write_text('log_format = "json"\nmetrics_dir = "/run/vibemuse-metrics"\n')
    config, _ = load_config({"data_dir": str(tmp_path)}, {"VIBEMUSE_METRICS_TOKEN": "s3cret-s3cret-s3cret"})
    assert (config.log_format, config.metrics_dir, config.metrics_token) == (
        "json", "/run/vibemuse-metrics", "s3cret-s3cret-s3cret")
    assert load_config({}, {})[0].log_format == "text"


@pytest.mark.parametrize("variable, value", [
    ("VIBEMUSE_LOG_FORMAT", "xml"),
    ("VIBEMUSE_METRICS_TOKEN", "short"),
    ("VIBEMUSE_METRICS_TOKEN", "has a space in it, sixteen+"),
])
def test_bad_operating_settings(variable, value):
    with pytest.raises(ConfigError, match=variable.removeprefix("VIBEMUSE_").lower()):
        load_config({}, {variable: value})
