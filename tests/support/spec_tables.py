"""The summary tables of protocol.md, made from the one source of each fact.

Theory of operation. protocol.md is prose for people, but its summary tables
(the paths of section 1, the envelope fields per frame of 6.2, the close
codes of 7, the frame types of 8, the endpoints of 9, the error codes and
their details of 10, the limits of 11) restate what the machine-readable
files already say. So they are not written by hand: each sits between
``<!-- table:NAME:start -->`` and ``<!-- table:NAME:end -->`` and is rendered
here from the files alone —

- ``openapi.json``: paths, methods, query parameters, security, success
  statuses, body schemas, and the ``x-section`` / ``x-access`` of each
  operation; ``x-websocket`` for the socket;
- ``schemas/frames/**``: frame types, their ``title``, ``x-section``, and for
  client frames ``x-answer``; the envelope fields of a server frame are the
  frame schema's own ``fromUser`` / ``toUser`` / ``roomId`` / ``channelId``
  properties (``false``: never sent; listed in ``required``: always sent);
- ``errors.json``: codes, HTTP statuses, descriptions, ``details`` shapes,
  close codes;
- ``schemas/common.json#/$defs/limits``: each limit's ``default`` and
  ``description``.

``python -m tests.support.spec_tables --write`` rewrites the tables in place;
without ``--write`` it lists the stale ones and exits 1. tests/test_spec.py
fails while any table differs from what this module renders.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

V1 = Path(__file__).resolve().parents[2] / "spec" / "v1"
PROTOCOL_MD = V1 / "protocol.md"
METHODS = ("get", "post", "put", "patch", "delete")
_MARKER = re.compile(r"<!-- table:([a-z-]+):start -->\n(.*?)<!-- table:\1:end -->", re.S)


class Sources:
    """The machine-readable spec, read from disk."""

    def __init__(self, root: Path = V1):
        def load(path: Path) -> Any:
            return json.loads(path.read_text(encoding="utf-8"))

        schemas = root / "schemas"
        self.schemas = {path.relative_to(schemas).as_posix(): load(path) for path in sorted(schemas.rglob("*.json"))}
        self.openapi = load(root / "openapi.json")
        self.errors = load(root / "errors.json")

    def frames(self, direction: str) -> dict[str, dict]:
        prefix = f"frames/{direction}/"
        return {path[len(prefix):-len(".json")]: doc for path, doc in self.schemas.items() if path.startswith(prefix)}

    def operations(self):
        for path, item in self.openapi["paths"].items():
            for method in METHODS:
                if method in item:
                    yield path, method, item[method]

    def parameter(self, parameter: dict) -> dict:
        if "$ref" in parameter:
            return self.openapi["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        return parameter


def section_key(section: str) -> tuple[int, ...]:
    """``"14.6"`` → (14, 6): the order of sections in protocol.md."""
    first = section.split(",")[0].strip()
    return tuple(int(part) for part in first.split("."))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def code(name: str) -> str:
    return f"`{name}`"


# -- section 1 and 9: the HTTP API --------------------------------------------------


def paths_list(sources: Sources) -> str:
    api = [path for path in sources.openapi["paths"] if path.startswith("/api/")]
    servers = [path for path in sources.openapi["paths"] if path.startswith("/federation/")]
    keys = [path for path in servers if path.endswith("/keys")]
    well_known = [path for path in sources.openapi["paths"] if path.startswith("/.well-known/")]
    socket = sources.openapi["x-websocket"]["path"]
    return (f"- **HTTP JSON API** (section 9): {', '.join(map(code, api))}.\n"
            f"- **WebSocket**: `GET {socket}` (sections 5 to 8).\n"
            f"- **Public key document** (`events.md` section 8): {', '.join(map(code, keys))}.\n"
            f"- **Server to server** (`federation.md`; 404 while federation is off): "
            f"{', '.join(code(path) for path in servers if path not in keys)}.\n"
            f"- **Discovery** (`federation-discovery.md`; 404 while federation is off): "
            f"{', '.join(map(code, well_known))}.\n")


def _query(sources: Sources, operation: dict) -> str:
    names = [sources.parameter(parameter) for parameter in operation.get("parameters", [])]
    query = [parameter["name"] for parameter in names if parameter["in"] == "query"]
    return "?" + "&".join(f"{name}=" for name in query) if query else ""


def _schema_of(body: dict | None) -> str | None:
    ref = (body or {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    return code(ref.removeprefix("schemas/")) if ref else None


def _bodies(method: str, operation: dict, successes: list[str]) -> str:
    request = _schema_of(operation.get("requestBody"))
    responses = list(dict.fromkeys(_schema_of(operation["responses"][status]) or "(none)" for status in successes))
    answer = " or ".join(responses)
    if request is None and method == "get":
        return f"→ {answer}"
    return f"{request or '(none)'} → {answer}"


def endpoints_table(sources: Sources) -> str:
    rows = []
    socket = sources.openapi["x-websocket"]
    for path, method, operation in sources.operations():
        if not path.startswith("/api/") and socket is not None:
            rows.append([f"`GET {socket['path']}`", "bearer or `auth` frame", "101", "WebSocket (frames: section 8)",
                         "5-8"])
            socket = None
        successes = [status for status in operation["responses"] if status != "default" and int(status) < 400]
        security = operation.get("security", sources.openapi.get("security"))
        auth = ("none" if not security or security[0] == {}  # [{}, ...]: a token is optional
                else "server signature" if "serverSignature" in security[0] else "bearer")
        if "x-access" in operation:
            auth += ", " + operation["x-access"]
        rows.append([f"`{method.upper()} {path}{_query(sources, operation)}`", auth, ", ".join(successes),
                     _bodies(method, operation, successes), operation["x-section"]])
    return table(["method and path", "auth", "success", "body schemas (request → response)", "section"], rows)


# -- sections 6.2 and 8: frames ----------------------------------------------------------


def client_frames_table(sources: Sources) -> str:
    frames = sorted(sources.frames("client").items(), key=lambda item: (section_key(item[1]["x-section"]), item[0]))
    rows: list[list[str]] = []
    for name, schema in frames:
        answer, section = schema["x-answer"], schema["x-section"]
        if rows and rows[-1][1:] == [answer, section]:
            rows[-1][0] += ", " + code(name)
        else:
            rows.append([code(name), answer, section])
    return table(["client → server", "answered by", "section"], rows)


def _title(schema: dict) -> str:
    return schema["title"].split(": ", 1)[1]


def server_frames_table(sources: Sources) -> str:
    frames = sorted(sources.frames("server").items(), key=lambda item: (section_key(item[1]["x-section"]), item[0]))
    return table(["server → client", "what it is", "section"],
                 [[code(name), _title(schema), schema["x-section"]] for name, schema in frames])


def _envelope_cell(schema: dict, field: str) -> str:
    declared = schema["properties"][field]
    if declared is False:
        return "—"
    if field in schema.get("required", []):
        return "always"
    return declared.get("description", "sometimes")


def envelope_table(sources: Sources) -> str:
    rows = []
    for name, schema in sorted(sources.frames("server").items()):
        sender = schema["properties"]["fromUser"]
        origin = "the server name" if sender["$ref"].endswith("/serverName") else sender["description"]
        rows.append([code(name), origin] + [_envelope_cell(schema, field) for field in ("toUser", "roomId", "channelId")])
    return table(["frame", "`fromUser`", "`toUser`", "`roomId`", "`channelId`"], rows)


# -- sections 7, 10 and 11: codes and limits -------------------------------------------------


def close_codes_table(sources: Sources) -> str:
    return table(["code", "name", "meaning"], [[str(entry["code"]), entry["name"], entry["description"]]
                                               for entry in sources.errors["closeCodes"]])


def error_codes_table(sources: Sources) -> str:
    return table(["code", "HTTP", "meaning"], [[code(entry["code"]), str(entry["httpStatus"]), entry["description"]]
                                               for entry in sources.errors["errors"]])


def error_details_table(sources: Sources) -> str:
    rows = [
        [code(entry["code"]) + (f", {shape['when']}" if "when" in shape else ""), code(shape["shape"])]
        for entry in sources.errors["errors"] for shape in entry.get("details", [])
    ]
    return table(["code", "details"], rows)


def limits_table(sources: Sources) -> str:
    limits = sources.schemas["common.json"]["$defs"]["limits"]["properties"]
    return table(["limit", "default", "effect"], [[code(name), str(limit["default"]), limit["description"]]
                                                  for name, limit in limits.items()])


TABLES: dict[str, Callable[[Sources], str]] = {
    "paths": paths_list,
    "envelope": envelope_table,
    "close-codes": close_codes_table,
    "client-frames": client_frames_table,
    "server-frames": server_frames_table,
    "endpoints": endpoints_table,
    "error-codes": error_codes_table,
    "error-details": error_details_table,
    "limits": limits_table,
}


def render(text: str, sources: Sources) -> str:
    """``text`` with every marked table rendered afresh; every table in TABLES must be marked once."""
    found = [match.group(1) for match in _MARKER.finditer(text)]
    if sorted(found) != sorted(TABLES):
        raise ValueError(f"protocol.md marks the tables {sorted(found)}, not {sorted(TABLES)}")

    def fresh(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- table:{name}:start -->\n{TABLES[name](sources)}<!-- table:{name}:end -->"

    return _MARKER.sub(fresh, text)


def stale_tables(text: str, sources: Sources) -> list[str]:
    rendered = {match.group(1): match.group(2) for match in _MARKER.finditer(render(text, sources))}
    return [match.group(1) for match in _MARKER.finditer(text) if match.group(2) != rendered[match.group(1)]]


def main(argv: list[str]) -> int:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    sources = Sources()
    if "--write" in argv:
        fresh = render(text, sources)
        if fresh != text:
            PROTOCOL_MD.write_text(fresh, encoding="utf-8")
            print("wrote", PROTOCOL_MD.relative_to(V1.parent.parent))
        return 0
    stale = stale_tables(text, sources)
    for name in stale:
        print(f"stale table in protocol.md: {name} (run python -m tests.support.spec_tables --write)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
