"""The conformance suite run as a user would: ``vibemuse-conformance`` against real servers.

1. A freshly started ``vibemuse serve`` with default settings (default rate
   limits and spam rules: the suite must pace itself), on SQLite and on
   PostgreSQL, with an admin made by ``vibemuse user create``: exit 0, no
   failure, and the JSON and JUnit outputs list the sections.
2. The same server behind a proxy that breaks the protocol (a required field
   dropped, two frames swapped, a signature forged): exit 1, and the report
   names the section that saw it.
3. Two and three federating servers: the federation sections pass.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conformance.breaking_proxy import BreakingProxy, ack_before_message, drop_field, forged_signature
from tests.federation.test_two_servers import free_port
from tests.support.federation import running
from tests.support.processes import LIFTED_LIMITS, ServerProcess

SUITE = str(Path(sys.executable).parent / "vibemuse-conformance")
VIBEMUSE = str(Path(sys.executable).parent / "vibemuse")
ADMIN, ADMIN_PASSWORD = "Warden", "Quartz-Lantern-Heron-58"
SUITE_SECONDS = 240


def default_server(tmp_path: Path, database_url: str, name: str = "conformance.test") -> ServerProcess:
    """A ``vibemuse serve`` with the default settings but for its database and port (an admin made first)."""
    server = ServerProcess(name, tmp_path / name, free_port(), database_url=database_url, peers={})
    for key in LIFTED_LIMITS:
        server.env.pop(key)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    made = subprocess.run([VIBEMUSE, "user", "create", ADMIN, "--admin", "--data-dir", str(server.data_dir),
                           "--server-name", name, "--database-url", database_url],
                          input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, env=server.env, timeout=120)
    assert made.returncode == 0, made.stderr
    return server


async def run_suite(*args: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(SUITE, *args, cwd=str(cwd), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), SUITE_SECONDS)
    return process.returncode, output.decode()


def sections(report: dict) -> dict[str, dict]:
    return {section["key"]: section for section in report["sections"]}


@pytest.mark.gen_test(timeout=SUITE_SECONDS + 60)
async def test_a_fresh_server_with_default_settings_passes_everything(tmp_path, database_url):
    server = default_server(tmp_path, database_url)
    await server.start()
    try:
        code, output = await run_suite(server.base_url, "--admin", f"{ADMIN}:{ADMIN_PASSWORD}", "--json",
                                       "report.json", "--junit-xml", "report.xml", cwd=tmp_path)
    finally:
        server.stop()
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["failed"] == 0 and report["totals"]["checksFailed"] == 0, output
    found = sections(report)
    for key in ("versions", "handshake", "envelopes", "speech", "commands", "rooms", "presence", "pages", "channels",
                "history", "resume", "messages", "signatures", "announcements", "admin", "limits"):
        assert found[key]["status"] == "pass", (key, output)
        assert found[key]["checks"] and all(check["status"] != "fail" for check in found[key]["checks"])
    assert found["federation-pages"] == {**found["federation-pages"], "status": "skip",
                                         "reason": "needs a second server"}
    assert report["servers"][0]["name"] == "conformance.test"
    junit = ElementTree.parse(tmp_path / "report.xml").getroot()
    suites = {suite.get("name"): suite for suite in junit.iter("testsuite")}
    assert set(suites) == {section["title"] for section in report["sections"]}
    assert sum(int(suite.get("failures")) for suite in suites.values()) == 0
    assert sum(1 for _ in junit.iter("testcase")) >= 100
    assert "0 failed" in output


@pytest.fixture
def lifted_server(tmp_path):
    """A server whose abuse limits are lifted, so that the suite may run on it several times."""
    server = ServerProcess("broken.test", tmp_path / "broken", free_port(),
                           database_url=f"sqlite:///{tmp_path}/broken.db", peers={})
    yield server
    server.stop()


BREAKAGES = [
    # (what the proxy breaks, the section to run, what its failure must say)
    (drop_field("typing", "timeoutMs"), "presence", "timeoutMs"),
    (ack_before_message, "speech", "the message frame before the ack"),
    (forged_signature("channel_message"), "channels", "invalid_event_signature"),
]


@pytest.mark.gen_test(timeout=SUITE_SECONDS * 2)
async def test_a_server_that_breaks_the_spec_fails_the_section_that_saw_it(tmp_path, lifted_server):
    await lifted_server.start()
    for breakage, section_key, evidence in BREAKAGES:
        proxy = BreakingProxy(lifted_server.base_url, breakage)
        try:
            code, output = await run_suite(proxy.base_url, "--only", "versions", section_key, "--json",
                                           f"{section_key}.json", cwd=tmp_path)
        finally:
            proxy.stop()
        assert code == 1, output
        found = sections(json.loads((tmp_path / f"{section_key}.json").read_text()))
        assert found["versions"]["status"] == "pass", output  # HTTP passes the proxy untouched
        assert found[section_key]["status"] == "fail", output
        failed = [check for check in found[section_key]["checks"] if check["status"] == "fail"]
        assert any(evidence in check["seen"] + check["expected"] + check["name"] for check in failed), output
        assert "FAIL" in output and found[section_key]["title"] in output
    # The same server, straight: the same sections pass (the failures were the proxy's).
    code, output = await run_suite(lifted_server.base_url, "--only", "presence", "speech", "channels", "announcements",
                                   cwd=tmp_path)
    assert code == 0, output
    assert "skipped  protocol.md 14.9 announcements: needs --admin" in output


@pytest.mark.gen_test(timeout=SUITE_SECONDS + 60)
async def test_three_federating_servers_pass_the_federation_sections(tmp_path, database_url):
    names = ("alpha.test", "beta.test", "gamma.test")
    async with running(tmp_path, database_url, names) as federation:
        urls = [federation.urls[name] for name in names]
        code, output = await run_suite(*urls, "--only", "federation", "--json", "report.json", cwd=tmp_path)
    assert code == 0, output
    found = sections(json.loads((tmp_path / "report.json").read_text()))
    for key in ("federation-pages", "federation-channels", "federation-three"):
        assert found[key]["status"] == "pass", (key, output)
        assert len(found[key]["checks"]) >= 4
