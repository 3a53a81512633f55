"""The compiled JSON Schemas of the published protocol (``spec/v1/schemas``).

``spec/`` is the single source of truth for the wire format: the server
validates what it receives (and the tests validate what it sends) against the
very files it publishes. This module is pure: the caller reads the files and
passes their parsed contents in (see ``vibemuse.specfiles``).

Layout of the schema set, by path relative to the schemas folder:

- ``frames/client/<type>.json``: one schema per client→server frame type;
- ``frames/server/<type>.json``: one schema per server→client frame type;
- ``http/<name>.json``: HTTP request and response bodies;
- anything else (``common.json``, the envelopes): shared definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_BASE_URI = "https://vibemuse.org/spec/v1/schemas/"
CLIENT_FRAMES = "frames/client/"
SERVER_FRAMES = "frames/server/"


@dataclass(frozen=True)
class SchemaViolation:
    """The most relevant reason an instance fails its schema."""

    path: str
    reason: str


class SchemaSet:
    """Validators for every schema of one protocol version, keyed by relative path."""

    def __init__(self, documents: Mapping[str, dict[str, Any]]):
        resources = []
        for path, document in documents.items():
            expected_id = SCHEMA_BASE_URI + path
            if document.get("$id") != expected_id:
                raise ValueError(f"schema {path} must have $id {expected_id!r}")
            resources.append((expected_id, Resource.from_contents(document, default_specification=DRAFT202012)))
        self._registry = Registry().with_resources(resources)
        self._validators = {
            path: Draft202012Validator(document, registry=self._registry) for path, document in documents.items()
        }
        self.client_frame_types = frozenset(_types_under(documents, CLIENT_FRAMES))
        self.server_frame_types = frozenset(_types_under(documents, SERVER_FRAMES))

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self._validators)

    def violation(self, path: str, instance: Any) -> SchemaViolation | None:
        """``None`` if ``instance`` matches the schema at ``path``, else the best reason why not."""
        validator = self._validators[path]
        errors = list(validator.iter_errors(instance))
        if not errors:
            return None
        # The deepest error is usually the one a person can act on.
        error = max(errors, key=lambda e: (len(e.absolute_path), -len(e.context or ())))
        pointer = "/" + "/".join(str(part) for part in error.absolute_path)
        return SchemaViolation(path=pointer, reason=error.message[:300])

    def client_frame_violation(self, frame_type: str, frame: Any) -> SchemaViolation | None:
        return self.violation(f"{CLIENT_FRAMES}{frame_type}.json", frame)

    def server_frame_violation(self, frame: Any) -> SchemaViolation | None:
        frame_type = frame.get("type") if isinstance(frame, dict) else None
        if frame_type not in self.server_frame_types:
            return SchemaViolation(path="/type", reason=f"{frame_type!r} is not a server frame type")
        return self.violation(f"{SERVER_FRAMES}{frame_type}.json", frame)

    def body_violation(self, name: str, body: Any) -> SchemaViolation | None:
        return self.violation(f"http/{name}.json", body)


def _types_under(documents: Mapping[str, Any], prefix: str) -> list[str]:
    return [
        path[len(prefix) : -len(".json")]
        for path in documents
        if path.startswith(prefix) and path.endswith(".json") and "/" not in path[len(prefix) :]
    ]
