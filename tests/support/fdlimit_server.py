"""A server that runs out of file descriptors: for tests/test_connection_limits.py.

``python -m tests.support.fdlimit_server DATA_DIR SPARE`` starts a server with a
``max_connections`` far above what it can hold, then lowers its own soft
RLIMIT_NOFILE to the descriptors it has open plus SPARE, and prints its port and
that limit. Its log (warnings and up) goes to standard error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys

from vibemuse.app import VibeMuseServer
from vibemuse.config import Config
from vibemuse.services.passwords import PasswordHasher


async def serve(data_dir: str, spare: int) -> None:
    config = Config(server_name="test.localhost", port=0, data_dir=data_dir, database_threads=1,
                    database_url=f"sqlite:///{data_dir}/vibemuse.db", max_connections=100_000)
    server = await VibeMuseServer.create(config, hasher=PasswordHasher(log_n=12))
    port = server.listen(0, "127.0.0.1")
    limit = len(os.listdir("/proc/self/fd")) + spare
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(port, limit, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(sys.argv[1], int(sys.argv[2])))
