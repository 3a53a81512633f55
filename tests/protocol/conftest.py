"""Keys shared by the signing and event tests (fixed seeds, so runs repeat)."""

from __future__ import annotations

import pytest

from vibemuse.protocol.signing import generate_signing_key

SERVER = "example.org"


@pytest.fixture
def key():
    """``ed25519:1`` of example.org."""
    return generate_signing_key("1", bytes(range(32)))


@pytest.fixture
def keys(key):
    """What verify_event wants: example.org's key by key id."""
    return {SERVER: {key.key_id: key.verify_key}}
