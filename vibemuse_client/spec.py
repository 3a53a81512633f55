"""The published protocol files the SDK reads: schemas, ``errors.json``, ``openapi.json``.

Where they come from, first found wins:

1. the ``spec_dir`` a caller passes (``Client(..., spec_dir=...)``), or the
   ``VIBEMUSE_SPEC_DIR`` environment variable: to check a server against
   another revision of the spec;
2. ``vibemuse_client/published_spec/`` inside an installed wheel (``setup.py`` ships the
   repository's ``spec/`` there as package data);
3. the repository's own ``spec/`` beside the package (a source checkout or an
   editable install).

Nothing here imports the server: the files are the SDK's only source of truth.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from vibemuse_client.errors import SchemaViolation

_PACKAGE_DIR = Path(__file__).resolve().parent
VERSION = "v1"


def find_spec_dir(spec_dir: str | os.PathLike[str] | None = None) -> Path:
    candidates = [Path(spec_dir)] if spec_dir else []
    if os.environ.get("VIBEMUSE_SPEC_DIR"):
        candidates.append(Path(os.environ["VIBEMUSE_SPEC_DIR"]))
    candidates += [_PACKAGE_DIR / "published_spec", _PACKAGE_DIR.parent / "spec"]
    for candidate in candidates:
        if (candidate / VERSION / "schemas").is_dir():
            return candidate
    raise FileNotFoundError(f"no protocol spec ({VERSION}/schemas) in any of {[str(c) for c in candidates]}")


class Spec:
    """One revision of protocol v1, read from disk: validators by schema path, codes, HTTP operations."""

    def __init__(self, root: Path):
        self.root = root
        base = root / VERSION
        schemas = base / "schemas"
        self.documents: dict[str, dict[str, Any]] = {
            path.relative_to(schemas).as_posix(): json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(schemas.rglob("*.json"))
        }
        self.registry: Registry = Registry().with_resources(
            (document["$id"], Resource.from_contents(document)) for document in self.documents.values())
        catalogue = json.loads((base / "errors.json").read_text(encoding="utf-8"))
        self.error_status = {entry["code"]: entry["httpStatus"] for entry in catalogue["errors"]}
        self.close_names = {entry["code"]: entry["name"] for entry in catalogue["closeCodes"]}
        self.openapi = json.loads((base / "openapi.json").read_text(encoding="utf-8"))
        self._operations = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"), path, item)
                            for path, item in self.openapi["paths"].items()]
        self._validators: dict[str, Draft202012Validator] = {}

    @property
    def server_frame_types(self) -> frozenset[str]:
        return frozenset(name[len("frames/server/"):-5] for name in self.documents
                         if name.startswith("frames/server/"))

    @property
    def client_frame_types(self) -> frozenset[str]:
        return frozenset(name[len("frames/client/"):-5] for name in self.documents
                         if name.startswith("frames/client/"))

    def validator(self, schema: str) -> Draft202012Validator:
        """``schema`` is a path under ``schemas/``, e.g. ``frames/server/ack.json``."""
        if schema not in self._validators:
            self._validators[schema] = Draft202012Validator(self.documents[schema], registry=self.registry)
        return self._validators[schema]

    def check(self, schema: str, instance: Any) -> None:
        """Raise ``SchemaViolation`` (with the JSON pointer of the first failure) unless it validates."""
        error = next(iter(sorted(self.validator(schema).iter_errors(instance), key=lambda e: e.path)), None)
        if error is not None:
            pointer = "".join(f"/{part}" for part in error.absolute_path)
            raise SchemaViolation("invalid_frame" if schema.startswith("frames/") else "invalid_request",
                                  f"{schema} at {pointer or '/'}: {error.message}",
                                  {"path": pointer, "schema": schema})

    def check_server_frame(self, frame: dict[str, Any]) -> None:
        """A server frame of a known type against its schema; of an unknown type, the envelope only
        (clients must ignore frame types they do not know, protocol.md 6.2)."""
        frame_type = frame.get("type") if isinstance(frame, dict) else None
        known = isinstance(frame_type, str) and f"frames/server/{frame_type}.json" in self.documents
        self.check(f"frames/server/{frame_type}.json" if known else "envelope-server.json", frame)

    def check_client_frame(self, frame: dict[str, Any]) -> None:
        self.check(f"frames/client/{frame['type']}.json", frame)

    def path_template(self, path: str) -> str | None:
        """The path of ``openapi.json`` that a concrete path matches (``/api/rooms/{roomId}``), if any."""
        return next((template for pattern, template, _ in self._operations if pattern.match(path)), None)

    def response_schema(self, method: str, path: str, status: int) -> str | None:
        """The schema (a path under ``schemas/``) of the JSON body ``openapi.json`` gives for this answer."""
        template = self.path_template(path)
        if template is None:
            return None
        answer = self.openapi["paths"][template].get(method.lower(), {}).get("responses", {}).get(str(status), {})
        reference = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        return reference[len("schemas/"):] if reference and reference.startswith("schemas/") else None


@functools.cache
def load_spec(spec_dir: str | None = None) -> Spec:
    return Spec(find_spec_dir(spec_dir))
