"""Validation against spec/ with the independent ``jsonschema`` package.

Built straight from the files, not through ``vibemuse.protocol.schemas``, so
a bug in the server's own schema handling cannot hide a bad frame.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"
SCHEMAS_DIR = SPEC_DIR / "v1" / "schemas"


def load_documents() -> dict[str, dict]:
    return {
        path.relative_to(SCHEMAS_DIR).as_posix(): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMAS_DIR.rglob("*.json"))
    }


class SpecValidator:
    def __init__(self) -> None:
        self.documents = load_documents()
        registry = Registry().with_resources(
            (document["$id"], Resource.from_contents(document)) for document in self.documents.values()
        )
        self._validators = {
            path: Draft202012Validator(document, registry=registry) for path, document in self.documents.items()
        }

    def errors(self, schema_path: str, instance) -> list[str]:
        return [error.message for error in self._validators[schema_path].iter_errors(instance)]

    def check_server_frame(self, frame: dict) -> None:
        schema_path = f"frames/server/{frame.get('type')}.json"
        assert schema_path in self._validators, f"server sent a frame type not in spec/: {frame.get('type')!r}"
        problems = self.errors(schema_path, frame)
        assert not problems, f"server frame does not match {schema_path}: {problems}\n{frame}"

    def check_body(self, name: str, body) -> None:
        problems = self.errors(f"http/{name}.json", body)
        assert not problems, f"body does not match http/{name}.json: {problems}\n{body}"
