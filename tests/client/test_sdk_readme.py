"""The greeter bot of vibemuse_client/README.md, run as written against a real server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import vibemuse_client
from tests.client.helpers import events_until
from tests.support.client import PASSWORD
from vibemuse_client import Client

README = Path(vibemuse_client.__file__).parent / "README.md"


def greeter_source() -> str:
    section = README.read_text(encoding="utf-8").split("## A greeter bot", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_greeter_is_about_twenty_lines():
    lines = [line for line in greeter_source().splitlines() if line.strip()]
    assert 10 <= len(lines) <= 22


@pytest.mark.gen_test(timeout=30)
async def test_the_readme_greeter_says_hello_to_whoever_arrives(served):
    greeter_account = await Client.register(served.base_url, "Greeter", PASSWORD)
    bob = await served.player("Bob")
    await served.set_role(bob, "builder")
    library = await bob.http.request("POST", "/api/rooms", {"name": "Library"})
    await bob.join_room(library["id"])

    namespace = {"__name__": "greeter"}  # not "__main__": the script's own entry point stays unused
    exec(compile(greeter_source(), str(README), "exec"), namespace)
    greeter = asyncio.ensure_future(namespace["greet"](served.base_url, "Greeter", PASSWORD))
    try:
        greeter_id = greeter_account.session.user.id
        while not served.server.context.registry.is_online(greeter_id):
            assert not greeter.done(), greeter.exception()
            await asyncio.sleep(0.02)
        arrival = await bob.leave_room()  # back to the default room, where the greeter stands
        heard = await events_until(bob, lambda event: event.sender == greeter_id)
        assert heard[-1].body == "Hello, Bob!" and heard[-1].stream_position > arrival.stream_position
    finally:
        greeter.cancel()
        await asyncio.gather(greeter, return_exceptions=True)
