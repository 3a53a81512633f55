"""The conformance suite run as a user would: ``vibemuse-conformance`` against real servers.

1. A freshly started ``vibemuse serve`` with default settings (default rate
   limits and spam rules: the suite must pace itself), on SQLite and on
   PostgreSQL, with an admin made by ``vibemuse user create``: exit 0, no
   failure, and the JSON and JUnit outputs list the sections.
2. The same server behind a proxy that breaks the protocol (a required field
   dropped, two frames swapped, a signature forged): exit 1, and the report
   names the section that saw it.
3. Two and three federating servers: the federation sections pass.
4. Coverage: a full run sends every client frame type of spec/ and calls
   every ``/api/`` operation of ``openapi.json`` (but the suite's listed
   exclusions), so a frame or path added to spec/ without a check fails here.
5. The deadlines (auth and heartbeat timeouts) with ``--slow``, against a
   server whose published limits make them short; and a section failing
   midway leaves the accounts as the next sections need them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from vibemuse_client import load_spec
from vibemuse_conformance import cli
from vibemuse_conformance.coverage import EXCLUDED_OPERATIONS
from vibemuse_conformance.runner import SECTIONS, section
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
    for key in ("versions", "handshake", "envelopes", "timeouts", "speech", "emit", "commands", "rooms", "presence",
                "pages", "channels", "history", "resume", "messages", "signatures", "announcements", "admin", "roles",
                "limits"):
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
    assert_full_coverage(report["coverage"])


SPEC = Path(__file__).resolve().parents[2] / "spec" / "v1"


def assert_full_coverage(coverage: dict) -> None:
    """Every client frame type (a file of schemas/frames/client/) sent, and answered but by errors
    (``typing`` is answered by nothing); every /api/ operation of openapi.json called, but the listed
    exclusions, each with its reason."""
    frame_types = {path.stem for path in (SPEC / "schemas" / "frames" / "client").glob("*.json")}
    assert len(frame_types) >= 27
    assert set(coverage["frames"]) == frame_types, frame_types ^ set(coverage["frames"])
    unanswered = {t for t, answers in coverage["frames"].items() if not set(answers) - {"error"}}
    assert unanswered == {"typing"}, unanswered
    openapi = json.loads((SPEC / "openapi.json").read_text())
    operations = {f"{method.upper()} {path}" for path, item in openapi["paths"].items() if path.startswith("/api/")
                  for method in item if method in ("get", "put", "post", "delete", "patch")}
    assert len(operations) >= 33
    assert all(reason.strip() for reason in EXCLUDED_OPERATIONS.values())
    assert set(EXCLUDED_OPERATIONS) <= operations
    called = {op for op in coverage["operations"] if op.split(" ", 1)[1].startswith("/api/")}
    assert called == operations - set(EXCLUDED_OPERATIONS), operations - set(EXCLUDED_OPERATIONS) ^ called
    assert coverage["missingFrames"] == [] and coverage["missingOperations"] == []


def test_coverage_notices_a_frame_and_an_operation_nobody_sent():
    """The record itself: what was not sent, or only refused, is missing."""
    from vibemuse_conformance.coverage import Coverage
    record = Coverage(load_spec())
    record.sent("say")
    record.answered("emit", "error")
    record.answered("ping", "pong")
    record.called("GET", "/api/rooms/!abcdefghijklmnop:x", 200)
    record.called("GET", "/api/no-such-thing", 404)
    record.sent("no_such_frame")
    missing = record.missing_frames()
    assert "say" in missing and "emit" in missing and "ping" not in missing and "typing" in missing
    assert "GET /api/rooms/{roomId}" not in record.missing_operations()
    assert "GET /api/rooms" in record.missing_operations()
    assert list(record.as_json()["operations"]) == ["GET /api/rooms/{roomId}"]
    assert "no_such_frame" not in record.as_json()["frames"]


@pytest.mark.gen_test(timeout=SUITE_SECONDS)
async def test_slow_waits_out_the_auth_and_heartbeat_timeouts_the_server_publishes(tmp_path):
    server = ServerProcess("deadlines.test", tmp_path / "deadlines", free_port(),
                           database_url=f"sqlite:///{tmp_path}/deadlines.db", peers={},
                           settings={"auth_timeout_seconds": 1, "heartbeat_interval_seconds": 0.5,
                                     "heartbeat_timeout_seconds": 2})
    await server.start()
    try:
        code, output = await run_suite(server.base_url, "--only", "timeouts", "--slow", "--json", "slow.json",
                                       cwd=tmp_path)
        quick_code, quick = await run_suite(server.base_url, "--only", "timeouts", "--json", "quick.json", cwd=tmp_path)
    finally:
        server.stop()
    assert code == 0, output
    [found] = json.loads((tmp_path / "slow.json").read_text())["sections"]
    assert found["status"] == "pass" and len(found["checks"]) == 5, output
    assert all(check["status"] == "pass" for check in found["checks"]), output
    # These limits are short: without --slow the same checks run (nothing needs --slow).
    assert quick_code == 0 and "needs --slow" not in quick, quick


@pytest.mark.gen_test(timeout=SUITE_SECONDS)
async def test_a_section_failing_midway_leaves_the_next_sections_their_accounts(tmp_path, database_url):
    """A section that moves a player to another room and fails there: the next section (presence, which
    needs both players in one room) still passes, and the player is back where they started."""

    async def strand(run):
        harness = run.harness
        [a] = await harness.players("a")
        builder = await harness.privileged("builder")
        room = await harness.http(harness.api(token=builder.token), builder.user_id, "POST", "/api/rooms",
                                  {"name": "Elsewhere " + harness.run_id})
        await a.ack("join_room", {"roomId": room["id"]})
        raise RuntimeError("a fault midway")

    server = default_server(tmp_path, database_url, "isolation.test")
    await server.start()
    section("strand", "a section that fails away from home")(strand)
    try:
        results, harness = await cli.run([server.base_url], admin=(ADMIN, ADMIN_PASSWORD), only=["strand", "presence"])
        account = await harness.account("a")
        me = await harness.api(token=account.token).me()
    finally:
        SECTIONS[:] = [s for s in SECTIONS if s.key != "strand"]
        server.stop()
    statuses = {result.key: result.status for result in results}
    assert statuses == {"strand": "fail", "presence": "pass"}, [(r.key, [c.as_json() for c in r.checks]) for r in results]
    assert me["location"] == account.location


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
