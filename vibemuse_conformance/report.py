"""The outputs of a run: the text report, ``--json`` and ``--junit-xml``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any, Iterable, TextIO

from vibemuse_conformance.runner import FAIL, PASS, SKIP, SectionResult

MARKS = {PASS: "pass", FAIL: "FAIL", SKIP: "skipped"}


def totals(results: Iterable[SectionResult]) -> dict[str, int]:
    counts = {"sections": 0, "passed": 0, "failed": 0, "skipped": 0, "checks": 0, "checksFailed": 0}
    for result in results:
        counts["sections"] += 1
        counts[{PASS: "passed", FAIL: "failed", SKIP: "skipped"}[result.status]] += 1
        counts["checks"] += len(result.checks)
        counts["checksFailed"] += len(result.failures)
    return counts


def write_text(results: list[SectionResult], out: TextIO, *, verbose: bool = False) -> None:
    for result in results:
        line = f"{MARKS[result.status]:7}  {result.title}"
        if result.status == SKIP:
            line += f": {result.reason}"
        else:
            passed = sum(1 for check in result.checks if check.status == PASS)
            line += f" ({passed}/{len(result.checks)} checks, {result.seconds:.1f} s)"
        out.write(line + "\n")
        for check in result.checks:
            if check.status == FAIL:
                out.write(f"         FAIL {check.name}\n"
                          f"              spec:     {result.title}\n"
                          f"              expected: {check.expected}\n"
                          f"              seen:     {check.seen}\n")
            elif check.status == SKIP and (verbose or result.status != SKIP):
                out.write(f"         skipped {check.name}: {check.reason}\n")
            elif verbose:
                out.write(f"         pass {check.name}\n")
    counts = totals(results)
    out.write(f"\n{counts['sections']} sections: {counts['passed']} passed, {counts['failed']} failed, "
              f"{counts['skipped']} skipped ({counts['checks']} checks, {counts['checksFailed']} failed)\n")


def as_json(results: list[SectionResult], servers: list[dict[str, Any]],
            coverage: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {"servers": servers, "totals": totals(results), "sections": [result.as_json() for result in results]}
    if coverage is not None:
        data["coverage"] = coverage
    return data


def write_json(results: list[SectionResult], servers: list[dict[str, Any]], path: str,
               coverage: dict[str, Any] | None = None) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(as_json(results, servers, coverage), out, indent=2, ensure_ascii=False)
        out.write("\n")


def write_junit(results: list[SectionResult], path: str) -> None:
    """One ``testsuite`` per section, one ``testcase`` per check (a skipped section: one skipped case)."""
    root = ElementTree.Element("testsuites", name="vibemuse-conformance")
    for result in results:
        cases = result.checks or []
        suite = ElementTree.SubElement(root, "testsuite", name=result.title, tests=str(max(1, len(cases))),
                                       failures=str(len(result.failures)),
                                       skipped=str(sum(1 for c in cases if c.status == SKIP) or
                                                   (1 if result.status == SKIP else 0)),
                                       time=f"{result.seconds:.3f}")
        if result.status == SKIP and not cases:
            case = ElementTree.SubElement(suite, "testcase", classname=result.key, name=result.title, time="0")
            ElementTree.SubElement(case, "skipped", message=result.reason)
            continue
        for check in cases:
            case = ElementTree.SubElement(suite, "testcase", classname=result.key, name=check.name,
                                          time=f"{check.seconds:.3f}")
            if check.status == FAIL:
                failure = ElementTree.SubElement(case, "failure", message=f"expected {check.expected}")
                failure.text = f"spec: {result.title}\nexpected: {check.expected}\nseen: {check.seen}"
            elif check.status == SKIP:
                ElementTree.SubElement(case, "skipped", message=check.reason)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
