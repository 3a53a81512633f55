"""The published protocol (spec/) is well formed and agrees with the code.

These tests read spec/ directly and build their own validators from it (not
through ``vibemuse.protocol.schemas``), so a bug in the server's schema
loading cannot hide a bug in the spec, and the other way round. The drift
checks compare spec/ with the code's catalogues, routes and patterns.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import urldefrag

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import vibemuse
import vibemuse.app
from tests.support import spec_examples
from vibemuse.config import Config
from vibemuse.handlers.frames import FRAME_HANDLERS
from vibemuse.handlers.wire import limits_to_wire
from vibemuse.protocol import ids
from vibemuse.protocol.errors import (
    CLOSE_CODE_DESCRIPTIONS, ERROR_CATALOGUE, ERROR_DETAILS, CloseCode, ErrorCode, ProtocolError,
)
from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.events import parse_server_keys_response, redact_event, verify_event
from vibemuse.protocol.frames import parse_client_frame
from vibemuse.protocol.schemas import SchemaSet
from vibemuse.protocol.versions import SUPPORTED_VERSIONS
from vibemuse.specfiles import load_schema_set, read_schema_documents

SPEC = Path(__file__).resolve().parent.parent / "spec"
V1 = SPEC / "v1"
SCHEMAS = V1 / "schemas"
EXAMPLES = V1 / "examples"
BASE_URI = "https://vibemuse.org/spec/v1/schemas/"


def load_json(path: Path):
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


SCHEMA_DOCS: dict[str, dict] = {
    path.relative_to(SCHEMAS).as_posix(): load_json(path) for path in sorted(SCHEMAS.rglob("*.json"))
}
REGISTRY = Registry().with_resources(
    (doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012))
    for doc in SCHEMA_DOCS.values()
    if "$id" in doc
)
FRAME_SCHEMAS = sorted(path for path in SCHEMA_DOCS if path.startswith("frames/"))
BODY_SCHEMAS = sorted(path for path in SCHEMA_DOCS if path.startswith(("http/", "federation/")))
# Examples that illustrate a schema live at the schema's path under examples/.
SCHEMA_EXAMPLES = sorted(
    path.relative_to(EXAMPLES).as_posix()
    for folder in ("frames", "http", "federation")
    for path in (EXAMPLES / folder).rglob("*.json")
)


def validator(schema_path: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMA_DOCS[schema_path], registry=REGISTRY)


def frame_types(direction: str) -> set[str]:
    prefix = f"frames/{direction}/"
    return {path[len(prefix) : -len(".json")] for path in SCHEMA_DOCS if path.startswith(prefix)}


# -- schema files ---------------------------------------------------------


def test_there_are_schemas() -> None:
    assert {"common.json", "envelope-client.json", "envelope-server.json"} <= set(SCHEMA_DOCS)
    assert FRAME_SCHEMAS and BODY_SCHEMAS


@pytest.mark.parametrize("path", sorted(SCHEMA_DOCS))
def test_schema_is_valid_draft_2020_12(path: str) -> None:
    document = SCHEMA_DOCS[path]
    assert document.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("path", sorted(SCHEMA_DOCS))
def test_schema_id_is_base_plus_path(path: str) -> None:
    assert SCHEMA_DOCS[path].get("$id") == BASE_URI + path


def _refs(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)
    return found


@pytest.mark.parametrize("path", sorted(SCHEMA_DOCS))
def test_every_schema_ref_resolves(path: str) -> None:
    resolver = REGISTRY.resolver(base_uri=BASE_URI + path)
    for ref in _refs(SCHEMA_DOCS[path], []):
        resolver.lookup(ref)  # raises if the target does not exist


@pytest.mark.parametrize("path", FRAME_SCHEMAS)
def test_frame_schema_type_const_is_its_file_name(path: str) -> None:
    name = path.rsplit("/", 1)[1][: -len(".json")]
    assert SCHEMA_DOCS[path]["properties"]["type"] == {"const": name}
    envelope = "envelope-client.json" if path.startswith("frames/client/") else "envelope-server.json"
    assert {"$ref": f"../../{envelope}"} in SCHEMA_DOCS[path]["allOf"]


def test_frame_folders_hold_only_client_and_server() -> None:
    assert {path.split("/")[1] for path in FRAME_SCHEMAS} == {"client", "server"}


# -- examples -------------------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_EXAMPLES)
def test_example_validates_against_its_schema(path: str) -> None:
    assert path in SCHEMA_DOCS, f"examples/{path} has no schema at schemas/{path}"
    instance = load_json(EXAMPLES / path)
    errors = sorted(validator(path).iter_errors(instance), key=lambda error: list(error.absolute_path))
    assert not errors, f"examples/{path}: " + "; ".join(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors
    )


@pytest.mark.parametrize("path", FRAME_SCHEMAS + BODY_SCHEMAS)
def test_every_frame_and_body_schema_has_an_example(path: str) -> None:
    assert (EXAMPLES / path).is_file(), f"schemas/{path} has no example at examples/{path}"


GENERATED = spec_examples.generated_files()


@pytest.mark.parametrize("path", sorted(path.relative_to(V1).as_posix() for path in GENERATED))
def test_generated_file_is_what_the_generator_makes(path: str) -> None:
    """Fix with ``python -m tests.support.spec_examples`` (and edit the generator, not the file)."""
    on_disk = (V1 / path).read_text(encoding="utf-8") if (V1 / path).is_file() else None
    assert on_disk == GENERATED[V1 / path], f"{path} is stale: run python -m tests.support.spec_examples"


def _events_in(node, found: list[dict]) -> list[dict]:
    if isinstance(node, dict):
        if "event_id" in node and "signatures" in node and "type" in node:  # (a channel stamp has no type)
            found.append(node)
        else:
            for value in node.values():
                _events_in(value, found)
    elif isinstance(node, list):
        for item in node:
            _events_in(item, found)
    return found


EXAMPLE_SERVER_KEYS = load_json(EXAMPLES / "http/server-keys.json")
EXAMPLE_EVENTS = {
    path.relative_to(EXAMPLES).as_posix(): _events_in(load_json(path), [])
    for path in sorted(EXAMPLES.rglob("*.json"))
}


def test_examples_hold_events() -> None:
    assert sum(map(len, EXAMPLE_EVENTS.values())) >= 7


def now_ms() -> int:
    return int(time.time() * 1000)


def test_the_example_key_document_has_not_expired() -> None:
    """A reader fetching the example today must be able to use it: it is valid for decades."""
    ten_years = 10 * 365 * 86_400_000
    assert EXAMPLE_SERVER_KEYS["valid_until_ts"] > now_ms() + ten_years
    parse_server_keys_response(EXAMPLE_SERVER_KEYS, spec_examples.SERVER, now_ms())  # raises when expired
    with pytest.raises(Exception, match="expired"):  # the check this relies on
        parse_server_keys_response(EXAMPLE_SERVER_KEYS, spec_examples.SERVER, EXAMPLE_SERVER_KEYS["valid_until_ts"])


@pytest.mark.parametrize("path", [path for path, events in EXAMPLE_EVENTS.items() if events])
def test_example_events_verify_with_the_example_key(path: str) -> None:
    keys = parse_server_keys_response(EXAMPLE_SERVER_KEYS, spec_examples.SERVER, now_ms())
    for event in EXAMPLE_EVENTS[path]:
        result = verify_event(event, {spec_examples.SERVER: keys.all_verify_keys()})
        assert not result.redacted_only, f"{path}: {event['event_id']} content does not match its hash"
        assert list(event["signatures"][event["origin"]]) == ["ed25519:2_Spec"]
        if path.startswith("federation"):  # a PDU: stream positions are each server's own
            assert "unsigned" not in event, path
        else:
            assert isinstance(event.get("unsigned", {}).get("stream_position"), int), path
        validator("event.json").validate(event)


def test_events_md_worked_example_quotes_the_example_files() -> None:
    """Every value events.md's worked example quotes is computed from examples/event-say.json."""
    event, keys = load_json(EXAMPLES / "event-say.json"), EXAMPLE_SERVER_KEYS
    text = (V1 / "events.md").read_text(encoding="utf-8")
    shown = json.loads(re.search(r"The event:\n\n```json\n(.*?)```", text, re.S).group(1))
    assert shown == event
    signature = event["signatures"][event["origin"]]["ed25519:2_Spec"]
    redacted = {key: value for key, value in redact_event(event).items() if key not in ("signatures", "unsigned")}
    without_id = {key: value for key, value in redacted.items() if key != "event_id"}
    hashed = {key: value for key, value in event.items() if key not in ("unsigned", "signatures", "hashes", "event_id")}
    unsigned_keys = {key: value for key, value in keys.items() if key != "signatures"}
    quoted = [
        keys["verify_keys"]["ed25519:2_Spec"]["key"],
        f"`{signature[:8]}...{signature[-6:]}`",
        event["event_id"],
        event["hashes"]["sha256"],
    ] + [
        "```\n" + encode_canonical_json(value).decode("utf-8") + "\n```"
        for value in (unsigned_keys, redacted, without_id, hashed)
    ]
    for value in quoted:
        assert value in text, f"events.md does not quote {value}"


def test_example_features_are_what_the_server_publishes() -> None:
    features = {version.name: version.features for version in SUPPORTED_VERSIONS}
    assert load_json(EXAMPLES / "http/versions.json")["features"] == features
    quoted = re.search(r'"features": (\{.*?\}),\n', (V1 / "protocol.md").read_text(encoding="utf-8"), re.S).group(1)
    assert json.loads(quoted) == features


def test_example_limits_are_the_defaults() -> None:
    """welcome and versions show the limits a server announces with the default configuration."""
    defaults = limits_to_wire(Config())
    assert load_json(EXAMPLES / "frames/server/welcome.json")["data"]["limits"] == defaults
    assert load_json(EXAMPLES / "http/versions.json")["limits"] == defaults


def test_protocol_md_quotes_the_default_limits() -> None:
    """The versions and welcome examples in protocol.md show every limit, with its default."""
    text = (V1 / "protocol.md").read_text(encoding="utf-8")
    quoted = [json.loads(match) for match in re.findall(r'"limits": (\{[^{}]*\})', text)]
    assert len(quoted) >= 2
    assert all(limits == limits_to_wire(Config()) for limits in quoted)


def test_protocol_md_names_every_frame_type_and_error_code() -> None:
    text = (V1 / "protocol.md").read_text(encoding="utf-8")
    names = sorted(frame_types("client") | frame_types("server")) + [entry["code"] for entry in ERRORS_JSON["errors"]]
    assert [name for name in names if f"`{name}`" not in text] == []


def test_event_ids_quoted_in_the_prose_are_example_events() -> None:
    known = {event["event_id"] for events in EXAMPLE_EVENTS.values() for event in events}
    for name in ("protocol.md", "events.md"):
        quoted = set(re.findall(r"\$[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", (V1 / name).read_text(encoding="utf-8")))
        assert quoted <= known, f"{name} quotes event ids no example holds: {sorted(quoted - known)}"


def test_validators_are_not_vacuous() -> None:
    ping = load_json(EXAMPLES / "frames/client/ping.json")
    assert list(validator("frames/client/ping.json").iter_errors(dict(ping, extra=1)))
    assert list(validator("frames/client/ping.json").iter_errors(dict(ping, type="auth")))
    room = load_json(EXAMPLES / "http/room.json")
    assert list(validator("http/room-list.json").iter_errors({"rooms": [dict(room, extra=1)], "next": None}))


# -- errors.json ----------------------------------------------------------

ERRORS_JSON = load_json(V1 / "errors.json")


def test_errors_json_equals_the_error_catalogue() -> None:
    assert set(ERRORS_JSON) == {"errors", "closeCodes"}
    assert ERRORS_JSON["errors"] == [spec_examples.error_entry(spec) for spec in ERROR_CATALOGUE.values()]
    assert [entry["code"] for entry in ERRORS_JSON["errors"]] == [str(code) for code in ERROR_CATALOGUE]
    assert set(ERROR_CATALOGUE) == set(ErrorCode) and set(ERROR_DETAILS) <= set(ErrorCode)


def test_errors_json_equals_the_close_codes() -> None:
    assert ERRORS_JSON["closeCodes"] == [
        {"code": int(code), "name": code.name, "description": CLOSE_CODE_DESCRIPTIONS[code]} for code in CloseCode
    ]
    assert set(CLOSE_CODE_DESCRIPTIONS) == set(CloseCode)


def test_error_codes_are_unique() -> None:
    codes = [entry["code"] for entry in ERRORS_JSON["errors"]]
    assert len(codes) == len(set(codes))
    close_codes = [entry["code"] for entry in ERRORS_JSON["closeCodes"]]
    assert len(close_codes) == len(set(close_codes))
    # codes a server may send (RFC 6455 7.4.1) and the private range
    assert all(code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 4000 <= code <= 4999
               for code in close_codes)


def test_common_error_code_enum_equals_error_codes() -> None:
    enum = SCHEMA_DOCS["common.json"]["$defs"]["errorCode"]["enum"]
    assert enum == [str(code) for code in ErrorCode]


# -- drift between common.json and the code ------------------------------


def test_id_patterns_match_the_code() -> None:
    defs = SCHEMA_DOCS["common.json"]["$defs"]
    assert defs["serverName"]["pattern"] == f"^{ids.SERVER_NAME_PATTERN}$"
    assert defs["username"]["pattern"] == f"^{ids.USERNAME_PATTERN}$"
    assert defs["userId"]["pattern"].startswith(f"^@{ids.USER_LOCALPART_PATTERN}:")
    assert defs["roomId"]["pattern"].startswith(f"^!{ids.ROOM_LOCALPART_PATTERN}:")


def test_limits_schema_matches_what_the_server_announces() -> None:
    wire = limits_to_wire(Config())
    validator("http/versions.json").validate(dict(load_json(EXAMPLES / "http/versions.json"), limits=wire))
    assert set(wire) == set(SCHEMA_DOCS["common.json"]["$defs"]["limits"]["required"])


@pytest.mark.parametrize("message_id", ["p1", "a.b_c:d~e-f", "x" * 64, "x" * 65, "bad id", "", "é"])
def test_in_reply_to_is_only_a_valid_message_id(message_id: str) -> None:
    """An error frame echoes a messageId only if error.json allows it."""
    frame = json.dumps({"type": "no-such-type", "messageId": message_id, "data": {}})
    with pytest.raises(ProtocolError) as raised:
        parse_client_frame(frame, load_schema_set("v1"))
    valid = Draft202012Validator(SCHEMA_DOCS["common.json"]["$defs"]["messageId"]).is_valid(message_id)
    assert raised.value.in_reply_to == (message_id if valid else None)


# -- openapi.json ---------------------------------------------------------

OPENAPI = load_json(V1 / "openapi.json")
WEBSOCKET_ROUTE = "/api/ws"


def route_to_openapi_path(pattern: str) -> str:
    """``/api/rooms/([^/]+)`` → ``/api/rooms/{}`` (parameter names are compared separately)."""
    return re.sub(r"\\(.)", r"\1", re.sub(r"\([^)]*\)", "{}", pattern))


def test_openapi_is_3_1() -> None:
    assert OPENAPI["openapi"].startswith("3.1.")
    assert OPENAPI["components"]["securitySchemes"]["bearerAuth"] == {
        **OPENAPI["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert OPENAPI["x-websocket"]["path"] == WEBSOCKET_ROUTE


def test_openapi_paths_equal_the_routes() -> None:
    routes = {route_to_openapi_path(pattern) for pattern, _ in vibemuse.app.ROUTES} - {WEBSOCKET_ROUTE}
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in OPENAPI["paths"]}
    assert documented == routes


def test_openapi_methods_equal_the_handlers() -> None:
    handlers = {route_to_openapi_path(pattern): handler for pattern, handler in vibemuse.app.ROUTES}
    for path, item in OPENAPI["paths"].items():
        handler = handlers[re.sub(r"\{[^}]+\}", "{}", path)]
        implemented = {method for method in ("get", "post", "put", "patch", "delete") if method in vars(handler)}
        documented = {method for method in item if method in ("get", "post", "put", "patch", "delete")}
        assert documented == implemented, path


def test_openapi_request_bodies_equal_the_handlers_request_schemas() -> None:
    """Each handler checks the Content-Type (415) and the schema of exactly the bodies the
    document declares."""
    handlers = {route_to_openapi_path(pattern): handler for pattern, handler in vibemuse.app.ROUTES}
    for path, item in OPENAPI["paths"].items():
        handler = handlers[re.sub(r"\{[^}]+\}", "{}", path)]
        documented = {
            method.upper(): operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            for method, operation in item.items() if isinstance(operation, dict) and "requestBody" in operation}
        declared = {method: f"schemas/{schema}.json" if schema.startswith("federation/") else f"schemas/http/{schema}.json"
                    for method, schema in getattr(handler, "request_schemas", {}).items()}
        assert documented == declared, path
        for method in documented:
            assert item[method.lower()]["requestBody"]["required"] is True, (path, method)
            assert "415" in item[method.lower()]["responses"], (path, method)


def _operations():
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_openapi_error_responses_use_the_error_schema_and_real_codes() -> None:
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            if status == "default" or int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "schemas/http/error.json"}, (path, method, status)
            for code in response.get("x-error-codes", []):
                assert ERROR_CATALOGUE[ErrorCode(code)].http_status == int(status), (path, method, code)


def test_openapi_path_parameters_are_declared() -> None:
    for path, item in OPENAPI["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        declared = {parameter["name"] for parameter in item.get("parameters", []) if parameter["in"] == "path"}
        assert names == declared, path


def _file_references(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "externalValue") and isinstance(value, str):
                found.append(value)
            else:
                _file_references(value, found)
    elif isinstance(node, list):
        for item in node:
            _file_references(item, found)
    return found


def test_openapi_references_resolve() -> None:
    references = _file_references(OPENAPI, [])
    assert references
    for reference in references:
        file_part, fragment = urldefrag(reference)
        if not file_part:  # internal: #/components/...
            target = OPENAPI
            for part in fragment.lstrip("/").split("/"):
                target = target[part]
            continue
        path = (V1 / file_part).resolve()
        assert path.is_file(), reference
        if fragment:
            target = load_json(path)
            for part in fragment.lstrip("/").split("/"):
                target = target[part]


def test_openapi_request_and_response_examples_validate() -> None:
    for path, method, operation in _operations():
        bodies = [operation.get("requestBody", {})] + list(operation["responses"].values())
        for body in bodies:
            media = body.get("content", {}).get("application/json", {})
            for example in media.get("examples", {}).values():
                schema_path = media["schema"]["$ref"].removeprefix("schemas/")
                validator(schema_path).validate(load_json(V1 / example["externalValue"]))


# -- WebSocket frame types ------------------------------------------------


def test_handled_client_frame_types_equal_the_spec() -> None:
    assert set(FRAME_HANDLERS) == frame_types("client")


def test_server_frame_types_sent_are_in_the_spec() -> None:
    """Every ``broadcaster.frame("<type>", ...)`` / ``_event_frame("<type>", ...)`` in the package."""
    package = Path(vibemuse.__file__).parent
    sent = {
        frame_type
        for path in package.rglob("*.py")
        for frame_type in re.findall(r'(?:\.frame|_event_frame)\(\s*"([a-z_.]+)"', path.read_text(encoding="utf-8"))
    }
    assert sent == frame_types("server")


# -- the server's loader --------------------------------------------------


def test_server_loads_the_spec() -> None:
    schemas = load_schema_set("v1")
    assert isinstance(schemas, SchemaSet)
    assert schemas.paths == frozenset(SCHEMA_DOCS)
    assert schemas.client_frame_types == frame_types("client")
    assert schemas.server_frame_types == frame_types("server")
    assert read_schema_documents("v1") == SCHEMA_DOCS

