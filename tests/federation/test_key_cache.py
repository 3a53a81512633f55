"""RemoteKeyCache with a fake fetch coroutine (the injected HTTP seam) and a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.federation.key_cache import KeyFetchError, RemoteKeyCache
from vibemuse.protocol.events import (
    MAX_KEY_VALIDITY_MS,
    ServerKeysError,
    build_server_keys_response,
)
from vibemuse.protocol.signing import KeyFormatError, UnknownKey, generate_signing_key

SERVER = "remote.org"
T0 = 1_767_225_600_000
HOUR = 3600_000
KEY1 = generate_signing_key("1", b"1" * 32)
KEY2 = generate_signing_key("2", b"2" * 32)


class FakeRemote:
    """Counts fetches; serves whatever document ``publish`` last set."""

    def __init__(self, clock):
        self.clock = clock
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None
        self.publish(KEY1, {}, HOUR)

    def publish(self, key, old, lifetime_ms):
        self.document = lambda: build_server_keys_response(
            SERVER, key, old, self.clock() + lifetime_ms)

    async def fetch(self, server_name):
        assert server_name == SERVER
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.document()


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def remote(clock):
    return FakeRemote(clock)


@pytest.fixture
def cache(remote, clock):
    return RemoteKeyCache(remote.fetch, clock, min_refetch_interval_ms=30_000)


def run(coro):
    return asyncio.run(coro)


def test_fetched_once_then_cached(cache, remote, clock):
    async def scenario():
        first = await cache.get_verify_key(SERVER, "ed25519:1")
        clock.now += HOUR - 1
        second = await cache.get_verify_key(SERVER, "ed25519:1")
        return first, second

    first, second = run(scenario())
    assert first == second == KEY1.verify_key
    assert remote.calls == 1


def test_refetched_after_valid_until(cache, remote, clock):
    async def scenario():
        await cache.get_verify_key(SERVER, "ed25519:1")
        clock.now += HOUR
        await cache.get_verify_key(SERVER, "ed25519:1")

    run(scenario())
    assert remote.calls == 2


def test_validity_capped_at_seven_days(cache, remote, clock):
    remote.publish(KEY1, {}, 30 * 24 * HOUR)

    async def scenario():
        keys = await cache.get_server_keys(SERVER)
        assert keys.valid_until_ts == T0 + MAX_KEY_VALIDITY_MS
        clock.now += MAX_KEY_VALIDITY_MS - 1
        await cache.get_verify_key(SERVER, "ed25519:1")
        assert remote.calls == 1
        clock.now += 1
        await cache.get_verify_key(SERVER, "ed25519:1")
        assert remote.calls == 2

    run(scenario())


def test_shorter_configured_validity(remote, clock):
    cache = RemoteKeyCache(remote.fetch, clock, max_validity_ms=60_000)

    async def scenario():
        await cache.get_verify_key(SERVER, "ed25519:1")
        clock.now += 60_000
        await cache.get_verify_key(SERVER, "ed25519:1")

    run(scenario())
    assert remote.calls == 2


def test_unknown_key_id_triggers_refetch_after_rotation(cache, remote, clock):
    async def scenario():
        await cache.get_verify_key(SERVER, "ed25519:1")
        remote.publish(KEY2, {KEY1.key_id: (KEY1.verify_key, clock())}, HOUR)
        clock.now += 30_000
        new = await cache.get_verify_key(SERVER, "ed25519:2")
        old = await cache.get_verify_key(SERVER, "ed25519:1")  # from old_verify_keys
        return new, old

    new, old = run(scenario())
    assert (new, old) == (KEY2.verify_key, KEY1.verify_key)
    assert remote.calls == 2


def test_unknown_key_refetch_is_rate_limited(cache, remote, clock):
    async def scenario():
        await cache.get_verify_key(SERVER, "ed25519:1")
        for _ in range(50):
            with pytest.raises(UnknownKey) as info:
                await cache.get_verify_key(SERVER, "ed25519:flood")
        assert info.value.key_ids == ("ed25519:flood",)
        assert remote.calls == 1  # within 30 s of the last fetch: no new fetch
        clock.now += 30_000
        with pytest.raises(UnknownKey):
            await cache.get_verify_key(SERVER, "ed25519:flood")
        assert remote.calls == 2
        with pytest.raises(UnknownKey):
            await cache.get_verify_key(SERVER, "ed25519:flood")
        assert remote.calls == 2

    run(scenario())


def test_concurrent_callers_share_one_fetch(cache, remote):
    async def scenario():
        remote.gate = asyncio.Event()
        waiters = [asyncio.ensure_future(cache.get_verify_key(SERVER, "ed25519:1"))
                   for _ in range(10)]
        for _ in range(5):  # let every waiter and the fetch task run
            await asyncio.sleep(0)
        assert remote.calls == 1
        remote.gate.set()
        return await asyncio.gather(*waiters)

    results = run(scenario())
    assert results == [KEY1.verify_key] * 10
    assert remote.calls == 1


def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(cache, remote):
    async def scenario():
        remote.gate = asyncio.Event()
        first = asyncio.ensure_future(cache.get_verify_key(SERVER, "ed25519:1"))
        second = asyncio.ensure_future(cache.get_verify_key(SERVER, "ed25519:1"))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        remote.gate.set()
        assert await second == KEY1.verify_key
        assert first.cancelled()

    run(scenario())
    assert remote.calls == 1


def test_fetch_failure_is_reported_and_throttled(cache, remote, clock):
    remote.error = ConnectionError("no route to host")

    async def scenario():
        with pytest.raises(KeyFetchError, match="no route to host"):
            await cache.get_verify_key(SERVER, "ed25519:1")
        with pytest.raises(KeyFetchError, match="next fetch allowed in 30000 ms") as info:
            await cache.get_verify_key(SERVER, "ed25519:1")
        assert isinstance(info.value.__cause__, ConnectionError)
        assert remote.calls == 1
        remote.error = None
        clock.now += 30_000
        assert await cache.get_verify_key(SERVER, "ed25519:1") == KEY1.verify_key
        assert remote.calls == 2

    run(scenario())


def test_a_forged_document_is_refused(cache, remote):
    document = build_server_keys_response(SERVER, KEY1, {}, T0 + HOUR)
    document["verify_keys"] = {KEY2.key_id: {"key": document["verify_keys"][KEY1.key_id]["key"]}}
    remote.document = lambda: document

    async def scenario():
        with pytest.raises(KeyFetchError) as info:
            await cache.get_verify_key(SERVER, "ed25519:1")
        assert isinstance(info.value.__cause__, ServerKeysError)
        assert cache.cached(SERVER) is None

    run(scenario())


def test_malformed_key_id_is_refused_without_fetching(cache, remote):
    with pytest.raises(KeyFormatError):
        run(cache.get_verify_key(SERVER, "ed25519:bad id"))
    assert remote.calls == 0
