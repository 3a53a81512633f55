"""Fixtures of the federation tests: a bare ``Storage`` on each engine (the ``database_url`` fixture)."""

from __future__ import annotations

import pytest

from vibemuse.storage import Storage, create_database_engine, ensure_schema


@pytest.fixture
def storage(database_url):
    engine = create_database_engine(database_url, pool_size=2)
    ensure_schema(engine, auto_migrate=False)
    storage = Storage(engine, threads=2)
    yield storage
    storage.close()
