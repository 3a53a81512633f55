"""``vibemuse-conformance <base-url> [<second-url> [<third-url>]]``: run the suite, print the report.

Exit codes: 0 when no check failed, 1 when one did, 2 for a bad command line
or a server that does not answer ``GET /api/versions``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Sequence

from vibemuse_client import load_spec
from vibemuse_conformance.harness import Harness, Unreachable
from vibemuse_conformance.report import write_json, write_junit, write_text
from vibemuse_conformance.sections import MODULES
from vibemuse_conformance.runner import (FAIL, PASS, SECTIONS, SKIP, CheckFailed, Outcome, Section, SectionAborted,
                                         SectionResult, SectionRun, Skip, describe)

SECTION_MODULES = MODULES  # importing them registered their sections
SECTION_SECONDS = 120.0
CONFORMS = "every frame and body validates against spec/ and every event verifies"


def credentials(value: str) -> tuple[str, str]:
    username, separator, password = value.partition(":")
    if not separator or not username or not password:
        raise argparse.ArgumentTypeError("give user:password")
    return username, password


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="vibemuse-conformance",
        description="Test a running VibeMUSE server against the published protocol (spec/).")
    parse.add_argument("urls", nargs="*", metavar="base-url",
                       help="the server's base URL (http://host:port); a second and third run the federation sections")
    parse.add_argument("--admin", type=credentials, metavar="USER:PASS", help="an admin account of the first server")
    parse.add_argument("--builder", type=credentials, metavar="USER:PASS",
                       help="a builder account of the first server")
    parse.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML")
    parse.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parse.add_argument("--only", nargs="+", metavar="SECTION",
                       help="run only these sections (their keys, or words of their titles)")
    parse.add_argument("--list", action="store_true", help="list the sections and exit")
    parse.add_argument("--spec-dir", help="the spec/ folder to hold the server to (default: the SDK's)")
    parse.add_argument("--verbose", action="store_true", help="print every check, not only failures")
    parse.add_argument("--slow", action="store_true",
                       help="also run the checks that wait out the server's long deadlines (the heartbeat timeout: "
                            "85 s with the default limits)")
    return parse


def selected(only: Sequence[str] | None) -> list[Section]:
    if not only:
        return list(SECTIONS)
    wanted = [word.lower() for word in only]
    return [s for s in SECTIONS if any(w == s.key or w in s.title.lower() for w in wanted)]


def why_not(section: Section, harness: Harness) -> str | None:
    """Why a section cannot run here (None: it can)."""
    if len(harness.servers) < section.servers:
        return "needs a second server" if section.servers == 2 else "needs a third server"
    for server in harness.servers[:section.servers]:
        missing = [flag for flag in section.features if not server.has(flag)]
        if missing:
            return f"not offered by the server{'' if server.index == 0 else f' {server.index + 1}'}: " \
                   f"{', '.join(missing)}"
    if section.admin and harness.admin_credentials is None:
        return "needs --admin"
    if section.builder and harness.admin_credentials is None and harness.builder_credentials is None:
        return "needs --builder (or --admin)"
    return None


def patience(harness: Harness) -> float:
    """What ``--slow`` adds to a section's time: the longest deadlines the server publishes."""
    limits = harness.server.limits
    return (limits.auth_timeout_ms + limits.heartbeat_timeout_ms + limits.heartbeat_interval_ms) / 1000


async def run_section(section: Section, harness: Harness) -> SectionResult:
    result = SectionResult(section.key, section.title)
    reason = why_not(section, harness)
    if reason is not None:
        result.status, result.reason = SKIP, reason
        return result
    started = time.monotonic()
    harness.open_scope()
    run = SectionRun(harness, result)
    seconds = SECTION_SECONDS + (patience(harness) if harness.slow else 0)
    try:
        await asyncio.wait_for(section.function(run), seconds)
    except Skip as skip:
        if not result.checks:
            result.status, result.reason = SKIP, str(skip)
        else:
            run.record(Outcome("the rest of the section", SKIP, reason=str(skip)))
    except SectionAborted:
        pass
    except CheckFailed as failure:  # raised outside any check
        run.record(Outcome("the section's set-up", FAIL, failure.expected, describe(failure.seen)))
    except asyncio.TimeoutError:
        run.record(Outcome("the section", FAIL, f"to end within {seconds:.0f} s", "it did not"))
    except Exception as error:  # a refusal or fault outside any check
        run.record(Outcome("the section's set-up", FAIL, "it to run", describe(f"{type(error).__name__}: {error}")))
    problems = await harness.tidy()
    if problems:
        run.record(Outcome("putting back what the section changed", FAIL, "the accounts as the section found them",
                           describe("; ".join(problems), 2000)))
    violations = await harness.close_scope()
    if result.status != SKIP:
        if violations:
            run.record(Outcome(CONFORMS, FAIL, "frames, bodies and signatures as spec/ describes them",
                               describe("; ".join(violations), 2000)))
        else:
            run.record(Outcome(CONFORMS, PASS))
    result.seconds = time.monotonic() - started
    result.settle()
    return result


async def run(urls: list[str], *, admin=None, builder=None, only=None, spec_dir=None, out=sys.stdout,
              verbose: bool = False, slow: bool = False) -> tuple[list[SectionResult], Harness]:
    spec = load_spec(spec_dir)
    servers = [await Harness.probe(url, index, spec) for index, url in enumerate(urls)]
    harness = Harness(servers, spec, admin=admin, builder=builder, slow=slow)
    results = []
    for section in selected(only):
        result = await run_section(section, harness)
        results.append(result)
        if verbose:
            out.write(f"{result.status:5} {result.title}\n")
            out.flush()
    return results, harness


def main(argv: Sequence[str] | None = None) -> int:
    parse = parser()
    args = parse.parse_args(argv)
    if not args.list and not args.urls:
        parse.error("give the base URL of the server to test")
    if args.list:
        for section in SECTIONS:
            print(f"{section.key:24} {section.title}")
        return 0
    if len(args.urls) > 3:
        print("vibemuse-conformance: at most three base URLs", file=sys.stderr)
        return 2
    if args.only and not selected(args.only):
        print(f"vibemuse-conformance: no section matches {' '.join(args.only)} (see --list)", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        results, harness = asyncio.run(run(args.urls, admin=args.admin, builder=args.builder, only=args.only,
                                           spec_dir=args.spec_dir, verbose=args.verbose, slow=args.slow))
    except Unreachable as error:
        print(f"vibemuse-conformance: the server does not answer: {error}", file=sys.stderr)
        return 2
    for server in harness.servers:
        print(f"server {server.index + 1}: {server.base_url} ({server.name}, "
              f"{server.versions.server.get('software')} {server.versions.server.get('version')})")
    print()
    write_text(results, sys.stdout, verbose=args.verbose)
    sys.stdout.write(harness.coverage.summary(details=not args.only or args.verbose))
    print(f"in {time.monotonic() - started:.1f} s")
    if args.json:
        write_json(results, [server.describe() for server in harness.servers], args.json, harness.coverage.as_json())
    if args.junit_xml:
        write_junit(results, args.junit_xml)
    return 1 if any(result.status == FAIL for result in results) else 0
