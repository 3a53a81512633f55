"""The conformance suite tests a server from outside: it imports nothing of ``vibemuse``.

Every module of ``vibemuse_conformance`` is read as source (AST), so an import
anywhere — at the top, in a function, ``import vibemuse`` or ``from vibemuse.x
import y`` — is caught without running it. Only the other direction is
allowed: ``vibemuse/conformance.py`` is a shim that calls the suite's main.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vibemuse_conformance

FORBIDDEN_ROOTS = ("vibemuse", "tests")
SHIM = Path(__file__).resolve().parents[2] / "vibemuse" / "conformance.py"


def imported_names(source: str) -> list[str]:
    """Every absolute module name imported anywhere in ``source`` (``importlib``/``__import__`` calls included)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.append(str(node.args[0].value))
    return names


def forbidden(source: str) -> list[str]:
    return [name for name in imported_names(source) if name.split(".")[0] in FORBIDDEN_ROOTS]


def test_the_rule_catches_every_way_of_importing_the_server():
    assert forbidden("import vibemuse") == ["vibemuse"]
    assert forbidden("def f():\n    from vibemuse.protocol import events") == ["vibemuse.protocol"]
    assert forbidden("import importlib\nimportlib.import_module('vibemuse.app')") == ["vibemuse.app"]
    assert forbidden("__import__('vibemuse')") == ["vibemuse"]
    assert forbidden("import vibemuse_client\nfrom vibemuse_conformance import runner\nfrom . import x") == []


def test_no_module_of_the_suite_imports_the_server():
    package = Path(vibemuse_conformance.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) >= 8 and any(m.parent.name == "sections" for m in modules)
    for module in modules:
        assert forbidden(module.read_text(encoding="utf-8")) == [], f"{module.relative_to(package)} imports the server"


def test_the_shim_in_vibemuse_only_calls_the_suite():
    source = SHIM.read_text(encoding="utf-8")
    assert imported_names(source) == ["vibemuse_conformance.cli"]
    code_lines = [line for line in source.splitlines() if line.strip() and not line.startswith('"""')]
    assert len(code_lines) <= 3


def test_both_entry_points_list_the_sections_and_refuse_a_bad_command_line():
    for module in ("vibemuse_conformance", "vibemuse.conformance"):
        listed = subprocess.run([sys.executable, "-m", module, "--list"], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "protocol.md 5.1-5.3 handshake" in listed.stdout
        usage = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=60)
        assert usage.returncode == 2 and "base URL" in usage.stderr
    script = Path(sys.executable).parent / "vibemuse-conformance"
    unreachable = subprocess.run([str(script), "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60)
    assert unreachable.returncode == 2 and "does not answer" in unreachable.stderr
