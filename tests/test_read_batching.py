"""``ReadBatcher``: reads asked for while one is under way are made together."""

from __future__ import annotations

import asyncio

import pytest

from vibemuse.storage.batching import ReadBatcher


class Reads:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()

    async def read_many(self, keys: list[int]) -> dict[int, str]:
        self.batches.append(keys)
        await self.release.wait()
        if 13 in keys:
            raise RuntimeError("unlucky")
        return {key: f"v{key}" for key in keys if key % 2 == 0}


@pytest.mark.gen_test
async def test_the_first_read_goes_at_once_and_the_rest_wait_for_the_next_batch():
    reads = Reads()
    batcher = ReadBatcher(reads.read_many, missing="none", max_keys=3)
    first = asyncio.ensure_future(batcher.get(2))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batcher.get(key)) for key in (4, 5, 4, 6, 8)]
    await asyncio.sleep(0)
    reads.release.set()
    assert await first == "v2"
    assert await asyncio.gather(*rest) == ["v4", "none", "v4", "v6", "v8"]  # a key not found gets ``missing``
    assert reads.batches == [[2], [4, 5], [6, 8]]  # at most three asks a batch, each key read once


@pytest.mark.gen_test
async def test_a_failed_batch_fails_its_callers_only():
    reads = Reads()
    reads.release.set()
    batcher = ReadBatcher(reads.read_many, missing="none")
    unlucky = asyncio.ensure_future(batcher.get(13))
    with pytest.raises(RuntimeError):
        await unlucky
    assert await batcher.get(10) == "v10"
