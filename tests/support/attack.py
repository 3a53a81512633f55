"""Helpers for the hostile tests (test_security, test_permissions, the fuzzers).

Everything here talks to a live server over real sockets, like a client
would; the only peeks inside are counts and a scan of the database for text
that must never have been stored.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import MetaData, select
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.support.client import WsClient

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec" / "v1"


def documented_error_codes() -> set[str]:
    return {entry["code"] for entry in json.loads((SPEC_DIR / "errors.json").read_text())["errors"]}


def documented_close_codes() -> set[int]:
    return {entry["code"] for entry in json.loads((SPEC_DIR / "errors.json").read_text())["closeCodes"]}


# -- frames -------------------------------------------------------------------


async def _read_until(socket: WsClient, done) -> dict[str, Any]:
    """Read frames until ``done(frame)``; the others stay pending for ``receive_type``."""
    held, socket._pending = socket._pending, []
    try:
        while True:
            frame = await socket.receive()
            assert frame is not None, "the server closed the socket"
            if done(frame):
                return frame
            held.append(frame)
    finally:
        socket._pending = held + socket._pending


def _replies_to(frame: dict[str, Any], message_id: str, *types: str) -> bool:
    data = frame.get("data")
    return frame["type"] in types and isinstance(data, dict) and data.get("inReplyTo") == message_id


async def answer(socket: WsClient, frame_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any] | None:
    """Send one frame and return its answer (``ack``, ``error``, ``who`` ...; not a spam ``notice``), or
    None when the frame has none (``typing``). A ``ping`` right after it marks the end: frames are
    handled in order, so everything the first one caused comes before the ``pong``."""
    message_id = await socket.send_frame(frame_type, data, **extra)
    marker = await socket.send_frame("ping")
    found: list[dict[str, Any]] = []

    def done(frame: dict[str, Any]) -> bool:
        if frame["type"] != "notice" and frame.get("data", {}).get("inReplyTo") == message_id and not found:
            found.append(frame)
            return False
        return _replies_to(frame, marker, "pong")

    await _read_until(socket, done)
    if found:  # the answer itself is not left pending
        socket._pending = [f for f in socket._pending if f is not found[0]]
    return found[0] if found else None


async def acked(socket: WsClient, frame_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    message_id = await socket.send_frame(frame_type, data, **extra)
    frame = await _read_until(socket, lambda f: _replies_to(f, message_id, "ack", "error"))
    assert frame["type"] == "ack", frame
    return frame


async def refused(socket: WsClient, frame_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Send a frame that must be refused; the error frame's data."""
    message_id = await socket.send_frame(frame_type, data, **extra)
    frame = await _read_until(socket, lambda f: _replies_to(f, message_id, "ack", "error"))
    assert frame["type"] == "error", frame
    return frame["data"]


# -- HTTP ---------------------------------------------------------------------


async def fetch(base_url: str, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                **options: Any) -> tuple[int, dict[str, str], Any]:
    """(status, headers, decoded body) — for when the headers matter (Retry-After)."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if payload is None and method in ("POST", "PUT"):
        payload = b""
    request = HTTPRequest(base_url + path, method=method, headers=all_headers, body=payload, **options)
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    decoded = json.loads(response.body) if response.body else None
    return response.code, dict(response.headers), decoded


# -- text that must never be stored or shown ------------------------------------

# NUL, an ANSI colour escape, a bidi override and a zero-width space.
HOSTILE = ("\x00", "\x1b", "\u202e", "\u200b")
HOSTILE_ESCAPED = ("\\u0000", "\\u001b", "\\u202e", "\\u200b")


def hostile(text: str) -> str:
    """``text`` with every hostile character worked in (still readable once they are stripped)."""
    return f"\x00{text[:1]}\x1b[31m{text[1:2]}\u202e{text[2:]}\u200b"


def dirty_strings(value: Any, path: str = "$") -> list[str]:
    """Paths of strings in ``value`` (JSON-like) that hold a hostile character, raw or JSON-escaped."""
    found: list[str] = []
    if isinstance(value, str):
        lowered = value.lower()
        if any(ch in value for ch in HOSTILE) or any(esc in lowered for esc in HOSTILE_ESCAPED):
            found.append(f"{path}: {value!r}")
    elif isinstance(value, bytes):
        found += dirty_strings(value.decode("utf-8", "replace"), path)
    elif isinstance(value, dict):
        for key, item in value.items():
            found += dirty_strings(key, f"{path}.<key>")
            found += dirty_strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += dirty_strings(item, f"{path}[{index}]")
    return found


def dirty_rows(engine: Any, skip_tables: Iterable[str] = ()) -> list[str]:
    """Every stored text, in every table of the server's database, that holds a hostile character
    (binary columns and SQLite's full-text index internals are not text)."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    found: list[str] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in skip_tables or "_fts" in table.name:
                continue
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    if not isinstance(value, (bytes, bytearray, memoryview)):
                        found += dirty_strings(value, f"{table.name}.{column}")
    return found


# -- TLS ----------------------------------------------------------------------


def self_signed_certificate(folder: Path, host: str = "127.0.0.1", *also: str) -> tuple[Path, Path]:
    """A fresh key and a self-signed certificate for ``host`` and ``also`` (IP addresses or DNS names), as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([_alt_name(x509, name) for name in (host, *also)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{host}.cert.pem", folder / f"{host}.key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _alt_name(x509, host: str):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
