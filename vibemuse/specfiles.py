"""Find and read the published protocol files (``spec/``) that the server runs on.

In a source checkout (and an editable install) they are the repository's own
``spec/`` folder; a wheel carries the same files as ``vibemuse/spec``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from vibemuse.protocol.schemas import SchemaSet

_PACKAGE_DIR = Path(__file__).resolve().parent


def spec_dir() -> Path:
    for candidate in (_PACKAGE_DIR / "spec", _PACKAGE_DIR.parent / "spec"):
        if (candidate / "v1" / "schemas").is_dir():
            return candidate
    raise FileNotFoundError("the protocol spec (spec/v1/schemas) is not installed next to the vibemuse package")


def read_schema_documents(version: str = "v1") -> dict[str, dict]:
    root = spec_dir() / version / "schemas"
    return {
        path.relative_to(root).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*.json"))
    }


@functools.cache
def load_schema_set(version: str = "v1") -> SchemaSet:
    return SchemaSet(read_schema_documents(version))
