"""Shared pieces of the fan-out benchmark: constants, process and socket probes,
and the limits a load test from one address needs lifted (see fanout.py)."""


from __future__ import annotations

import array
import json
import math
import os
import resource
import signal
import socket
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = ROOT / ".venv" / "bin"

MAX_CLIENTS = 20000
MARK = b"fanout "  # measured messages: "fanout <seq> <send time_ns> ..."
WARM = b"warmup "  # warm-up messages, not counted
FILLER = "the quick brown fox jumps over the lazy dog"
PASSWORD = "bench-fanout-pw-7"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def source_tree() -> str:
    """The commit under test, and whether vibemuse/ differs from it."""
    try:
        def git(*words: str) -> str:
            done = subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10)
            return done.stdout.strip()

        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "vibemuse")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes in vibemuse/" if dirty else "")


def lifted_limits(sockets: int) -> dict[str, str]:
    """Environment that lifts VibeMUSE's abuse limits for a load test from one address.

    Every client of the benchmark comes from 127.0.0.1 and one speaker says 20
    messages a second, so the per-address connection cap, the rate limits
    (registrations, handshakes, speech ...) and the flood rules would refuse
    the benchmark itself. The checks still run on every frame; only their
    thresholds are raised. Settings this tree does not have are left out.
    """
    try:
        from vibemuse import config
    except Exception:  # noqa: BLE001 - an unimportable tree fails later, with its own message
        return {}
    env: dict[str, str] = {}
    settings = set(getattr(config, "SETTINGS", ()))
    if "max_connections_per_address" in settings:
        env["VIBEMUSE_MAX_CONNECTIONS_PER_ADDRESS"] = str(sockets + 100)
    if "rate_limits" in settings:
        actions = getattr(config, "DEFAULT_RATE_LIMITS", {})
        env["VIBEMUSE_RATE_LIMITS"] = json.dumps({action: [1e6, 1e6] for action in actions})
    for name in ("spam_flood_count", "spam_repeat_count", "spam_disconnect_after"):
        if name in settings:
            env["VIBEMUSE_" + name.upper()] = "1000000"
    return env


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stop_process(process: "subprocess.Popen | None", grace: float = 30.0) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not ended within ``grace`` seconds."""
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(sorted_values: array.array, fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1)]


