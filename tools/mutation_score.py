"""Mutation score per protocol module, from the results ``make mutation`` left.

mutmut keeps one verdict per mutant in ``mutants/<module path>.meta`` (the exit
code of the test run against that mutant). This prints, per module, how many
mutants the tests killed out of how many were made, the survivors accepted as
equivalent in ``tests/protocol/MUTATION.md`` (table rows starting with the
mutant's name in backticks), and every other survivor. It exits 1 when a
survivor is neither killed nor accepted, so a new untested behaviour shows.

    python tools/mutation_score.py [MODULE ...]     (default: all seven)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("canonical_json", "markup", "commands", "events", "signing", "federation_auth", "federation_units")
ACCEPTED_FILE = ROOT / "tests" / "protocol" / "MUTATION.md"
KILLED = {1, 3}  # the tests failed (3: pytest's internal error, also a failure)
TIMEOUT = {36, 24, -24, 152}  # the mutant hung: also caught
SURVIVED = {0}


def accepted_survivors() -> set[str]:
    """The mutant names MUTATION.md lists as equivalent."""
    text = ACCEPTED_FILE.read_text(encoding="utf-8") if ACCEPTED_FILE.exists() else ""
    return set(re.findall(r"^\|\s*`([^`]+)`", text, flags=re.MULTILINE))


def verdicts(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / "vibemuse" / "protocol" / f"{module}.py.meta"
    if not meta.exists():
        raise SystemExit(f"{meta} is missing: run `make mutation MODULES={module}` first")
    return json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]


def main(modules: list[str]) -> int:
    accepted = accepted_survivors()
    unexplained: list[str] = []
    print(f"{'module':<16}{'killed':>8}{'total':>7}{'score':>8}{'accepted':>10}{'adjusted':>10}")
    for module in modules:
        codes = verdicts(module)
        caught = sum(code in KILLED | TIMEOUT for code in codes.values())
        survivors = sorted(name for name, code in codes.items() if code not in KILLED | TIMEOUT)
        equivalent = [name for name in survivors if name in accepted]
        unexplained += [f"{name} (exit {codes[name]})" for name in survivors if name not in accepted]
        total = len(codes)
        print(f"{module:<16}{caught:>8}{total:>7}{caught / total:>8.1%}{len(equivalent):>10}"
              f"{caught / (total - len(equivalent)):>10.1%}")
    for line in unexplained:
        print("survived, not accepted:", line)
    return 1 if unexplained else 0


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(MODULES)
    unknown = sorted(set(chosen) - set(MODULES))
    if unknown:
        raise SystemExit(f"unknown module(s) {', '.join(unknown)}; pick from {', '.join(MODULES)}")
    sys.exit(main(chosen))
