"""What a run sent and called: every client frame type and every operation of ``openapi.json``.

Theory of operation. The harness records each client frame it sends (through
the SDK or a raw socket) with the types of the answers it got (answers that
failed their schema are not answers: they are violations), and each HTTP
request with the ``openapi.json`` operation it hit (``GET
/api/rooms/{roomId}``) and its status. ``--json`` writes the record as
``coverage``, and the report prints what the spec offers that the run never
touched. A test of this project (``tests/conformance``) compares a full run's
record with spec/'s client frame schemas and its ``/api/`` operations, so a
frame or path added to spec/ without a conformance check fails there.

What the suite does not call on purpose is listed here, once, with the reason.
"""

from __future__ import annotations

from typing import Any

from vibemuse_client import Spec

API_PREFIX = "/api/"
# Client frames the server answers with nothing (protocol.md 8: "typing | nothing").
UNANSWERED_FRAMES = frozenset({"typing"})
# Operations under /api/ the suite does not call, and why. (Everything else under /api/ that a
# player, builder or admin may call is called by some check.)
EXCLUDED_OPERATIONS: dict[str, str] = {}


def operation_key(method: str, template: str) -> str:
    return f"{method.upper()} {template}"


def api_operations(spec: Spec) -> list[str]:
    """Every operation of ``openapi.json`` under ``/api/``, as ``METHOD /path/{param}``."""
    return sorted(operation_key(method, path) for path, item in spec.openapi["paths"].items()
                  if path.startswith(API_PREFIX)
                  for method in item if method in ("get", "put", "post", "delete", "patch"))


class Coverage:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.frames: dict[str, set[str]] = {}  # client frame type -> types of the answers it got
        self.operations: dict[str, set[int]] = {}  # METHOD /template -> statuses seen

    def sent(self, frame_type: Any) -> None:
        """A frame of a type spec/ defines went out (the suite's deliberately unknown types are not kept)."""
        if frame_type in self.spec.client_frame_types:
            self.frames.setdefault(frame_type, set())

    def answered(self, frame_type: str, answer_type: str) -> None:
        if frame_type in self.spec.client_frame_types:
            self.frames.setdefault(frame_type, set()).add(answer_type)

    def called(self, method: str, path: str, status: int) -> None:
        template = self.spec.path_template(path)
        if template is not None and method.lower() in self.spec.openapi["paths"][template]:
            self.operations.setdefault(operation_key(method, template), set()).add(status)

    def missing_frames(self) -> list[str]:
        """Client frame types of spec/ never sent, or (but for ``typing``) never answered but by errors."""
        return sorted(t for t in self.spec.client_frame_types
                      if t not in self.frames or (t not in UNANSWERED_FRAMES and not self.frames[t] - {"error"}))

    def missing_operations(self) -> list[str]:
        return [op for op in api_operations(self.spec) if op not in self.operations and op not in EXCLUDED_OPERATIONS]

    def as_json(self) -> dict[str, Any]:
        return {"frames": {t: sorted(answers) for t, answers in sorted(self.frames.items())},
                "operations": {op: sorted(statuses) for op, statuses in sorted(self.operations.items())},
                "excluded": dict(EXCLUDED_OPERATIONS),
                "missingFrames": self.missing_frames(), "missingOperations": self.missing_operations()}

    def summary(self, details: bool = True) -> str:
        frames = self.spec.client_frame_types
        operations = [op for op in api_operations(self.spec) if op not in EXCLUDED_OPERATIONS]
        missing_frames, missing_operations = self.missing_frames(), self.missing_operations()
        lines = [f"coverage: {len(frames) - len(missing_frames)}/{len(frames)} client frame types sent and answered, "
                 f"{len(operations) - len(missing_operations)}/{len(operations)} {API_PREFIX} operations called"
                 + (f" ({len(EXCLUDED_OPERATIONS)} excluded)" if EXCLUDED_OPERATIONS else "")]
        if missing_frames and details:
            lines.append("  not sent (or only refused): " + ", ".join(missing_frames))
        if missing_operations and details:
            lines.append("  not called: " + ", ".join(missing_operations))
        return "\n".join(lines) + "\n"
