"""Fixtures and helpers of the security tests: each test turns on exactly the
limits it attacks (conftest's ``config`` sets them all out of the way)."""

from __future__ import annotations

import dataclasses

import pytest

SLOW = 0.001  # tokens per second: no refill during a test
# What lives only in memory (the spam state, origin and handshake checks, TLS, the JSON parser) is the same
# on both engines: those tests run on SQLite alone to keep the suite quick.
MEMORY_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def overrides():
    """Settings of the server under test; tests parametrize this (``rate_limits`` is merged)."""
    return {}


@pytest.fixture
def server_config(config, overrides):
    settings = dict(overrides)
    rates = {**config.rate_limits, **settings.pop("rate_limits", {})}
    return dataclasses.replace(config, rate_limits=rates, **settings)


def limits(**rates):
    return {"rate_limits": rates}


def bucket(burst, per_second=SLOW):
    return (float(burst), float(per_second))


async def http_status(api, method, path, body=None, token=None):
    status, decoded = await api.call(method, path, body, token=token)
    return status, (decoded or {}).get("error", {}).get("code")
