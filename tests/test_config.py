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
