"""A small request signer for tests, over the format of FEDERATION_SHARED / spec/v1/federation.md.

The server's own signer is ``vibemuse.protocol.federation_auth`` (merged
separately); this one lets the sender's tests sign like a real origin and lets
the stand-in peer check what it received, without depending on it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any, Callable

from cryptography.exceptions import InvalidSignature

from vibemuse.protocol.canonical_json import encode_canonical_json
from vibemuse.protocol.signing import SigningKey, generate_signing_key

ALPHA, BETA = "alpha.test", "beta.test"  # the sender's server and its peer in the outbox tests
KEY = generate_signing_key("1_test")  # alpha's key there

PARAM = re.compile(r'([a-z]+)="([^"]*)"')


def _signed_object(method: str, uri: str, origin: str, destination: str, content: Any, ts: int,
                   nonce: str) -> bytes:
    signed = {"method": method, "uri": uri, "origin": origin, "destination": destination, "ts": ts, "nonce": nonce}
    if isinstance(content, bytes):  # the sender passes the body it sends, encoded already
        content = json.loads(content)
    if content is not None:
        signed["content"] = content
    return encode_canonical_json(signed)


def authorizer(key: SigningKey, origin: str, clock: Callable[[], int]) -> Callable[..., str]:
    """``authorize(method, uri, destination, content) -> header value`` for the sender."""
    def authorize(method: str, uri: str, destination: str, content: Any) -> str:
        ts, nonce = clock(), secrets.token_urlsafe(16)
        signature = key.private_key.sign(_signed_object(method, uri, origin, destination, content, ts, nonce))
        sig = base64.b64encode(signature).decode().rstrip("=")
        return (f'X-VibeMUSE origin="{origin}",destination="{destination}",key="{key.key_id}",'
                f'ts="{ts}",nonce="{nonce}",sig="{sig}"')
    return authorize


def verifies(header: str | None, key: SigningKey, *, method: str, uri: str, content: Any) -> bool:
    """Whether ``header`` is a valid signature by ``key`` of this request."""
    if not header or not header.lower().startswith("x-vibemuse "):
        return False
    params = dict(PARAM.findall(header))
    sig = params.get("sig", "")
    try:
        raw = base64.b64decode(sig + "=" * (-len(sig) % 4))
        key.verify_key.verify(raw, _signed_object(method, uri, params["origin"], params["destination"], content,
                                                  int(params["ts"]), params["nonce"]))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True
