"""Server discovery, the pure part: base URLs and the well-known document.

A server is known by its server name (``ids.SERVER_NAME_PATTERN``); other
servers reach it at its *base URL*, which a server announces at
``GET https://<server_name>/.well-known/vibemuse/server`` as
``{"base_url": "https://muse.example.org:8448"}``. Federation paths are the
base URL plus ``/federation/v1/...``.

A base URL is an absolute ``http`` or ``https`` URL whose authority is a
valid server name (host or bracketed IP literal, optional port): no user
info, no query, no fragment; it may have a path (a server behind a reverse
proxy under a prefix). :func:`normalize_base_url` lowercases the scheme and
drops trailing slashes, so ``https://a.example/`` and ``https://a.example``
are one URL. Everything here is a function of its arguments: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from vibemuse.protocol.ids import is_valid_server_name

__all__ = [
    "MAX_BASE_URL_LENGTH", "MAX_WELL_KNOWN_BYTES", "WELL_KNOWN_PATH", "InvalidBaseUrl", "InvalidWellKnown",
    "normalize_base_url", "parse_well_known", "server_name_host", "well_known_body", "well_known_url",
]

WELL_KNOWN_PATH = "/.well-known/vibemuse/server"
MAX_BASE_URL_LENGTH = 2048
MAX_WELL_KNOWN_BYTES = 8192  # an answer past this is refused unread
_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*")


class InvalidBaseUrl(ValueError):
    """Not an absolute http(s) URL with a server-name authority and no query or fragment."""


class InvalidWellKnown(ValueError):
    """A well-known answer that is not ``{"base_url": <base URL>}``."""


def normalize_base_url(value: object) -> str:
    """``value`` as a base URL (scheme lower-cased, no trailing ``/``); raises :class:`InvalidBaseUrl`."""
    if not isinstance(value, str) or not value or len(value) > MAX_BASE_URL_LENGTH:
        raise InvalidBaseUrl(f"must be a URL of at most {MAX_BASE_URL_LENGTH} characters")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidBaseUrl("must be printable ASCII without spaces (percent-encode the rest)")
    scheme, colon_slashes, rest = value.partition("://")
    if not colon_slashes or scheme.lower() not in ("http", "https"):
        raise InvalidBaseUrl("must be an absolute http:// or https:// URL")
    if "?" in rest or "#" in rest:
        raise InvalidBaseUrl("must have no query and no fragment")
    parts = urlsplit(scheme.lower() + "://" + rest)
    if "@" in parts.netloc:
        raise InvalidBaseUrl("must have no user name or password")
    if not is_valid_server_name(parts.netloc):
        raise InvalidBaseUrl("must name a host (a DNS name or IP literal, optional :port)")
    if _PATH.fullmatch(parts.path) is None:
        raise InvalidBaseUrl("has characters a URL path may not hold")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def well_known_url(server_name: str) -> str:
    """Where a server named ``server_name`` announces its base URL (the name must be valid)."""
    if not is_valid_server_name(server_name):
        raise ValueError(f"{server_name!r} is not a server name")
    return f"https://{server_name}{WELL_KNOWN_PATH}"


def well_known_body(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url}


def parse_well_known(body: bytes) -> str:
    """The base URL a well-known answer announces; raises :class:`InvalidWellKnown`.

    The body must be at most ``MAX_WELL_KNOWN_BYTES`` of UTF-8 JSON, an object
    whose ``base_url`` is a base URL; other members are ignored (room to grow).
    """
    if len(body) > MAX_WELL_KNOWN_BYTES:
        raise InvalidWellKnown(f"answer larger than {MAX_WELL_KNOWN_BYTES} bytes")
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidWellKnown("answer is not UTF-8 JSON") from None
    if not isinstance(document, dict):
        raise InvalidWellKnown("answer is not a JSON object")
    if "base_url" not in document:
        raise InvalidWellKnown("answer has no base_url")
    try:
        return normalize_base_url(document["base_url"])
    except InvalidBaseUrl as error:
        raise InvalidWellKnown(f"base_url {error}") from None


def server_name_host(server_name: str) -> str:
    """The host part of a server name (``muse.example.org:8448`` → ``muse.example.org``, ``[::1]:80`` → ``[::1]``)."""
    if server_name.startswith("["):
        return server_name[: server_name.index("]") + 1]
    return server_name.partition(":")[0]


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
