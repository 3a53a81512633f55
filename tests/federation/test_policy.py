"""The federation ACL and its settings."""

from __future__ import annotations

import pytest

from vibemuse.config import ConfigError, load_config
from vibemuse.federation.policy import FederationPolicy


def test_open_by_default():
    policy = FederationPolicy()
    assert policy.enabled and policy.permits("anyone.test")


def test_deny_list():
    policy = FederationPolicy(deny=frozenset({"bad.test"}))
    assert not policy.permits("bad.test") and policy.permits("good.test")


def test_allow_list_and_deny_wins():
    policy = FederationPolicy(allow=frozenset({"a.test", "b.test"}), deny=frozenset({"b.test"}))
    assert policy.permits("a.test")
    assert not policy.permits("b.test")
    assert not policy.permits("c.test")


def test_settings_from_file_and_environment(tmp_path):
    (tmp_path / "vibemuse.toml").write_text('federation_allow = ["a.test", "b.test:8448"]\n')
    config, _ = load_config({"data_dir": str(tmp_path)}, {
        "VIBEMUSE_FEDERATION_DENY": "x.test, y.test", "VIBEMUSE_FEDERATION": "false",
        "VIBEMUSE_FEDERATION_REQUEST_WINDOW_SECONDS": "60"})
    policy = FederationPolicy.from_config(config)
    assert policy == FederationPolicy(False, frozenset({"a.test", "b.test:8448"}),
                                      frozenset({"x.test", "y.test"}))
    assert config.federation_request_window_seconds == 60


def test_defaults(tmp_path):
    config, _ = load_config({"data_dir": str(tmp_path)}, {})
    assert (config.federation, config.federation_allow, config.federation_deny,
            config.federation_request_window_seconds) == (True, (), (), 300)
    assert config.rate_limits["federation_origin"] == (20, 10.0)


@pytest.mark.parametrize("text,setting", [
    ('federation_deny = ["not a name"]', "federation_deny"),
    ("federation_allow = 3", "federation_allow"),
    ("federation_request_window_seconds = 5", "federation_request_window_seconds"),
    ('federation = "maybe"', "federation"),
])
def test_bad_settings(tmp_path, text, setting):
    (tmp_path / "vibemuse.toml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=setting):
        load_config({"data_dir": str(tmp_path)}, {})
