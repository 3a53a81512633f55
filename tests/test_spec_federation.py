"""federation.md's worked example, checked from the example files alone."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

V1 = Path(__file__).resolve().parents[1] / "spec" / "v1"
EXAMPLE = json.loads((V1 / "examples" / "federation-request-signature.json").read_text(encoding="utf-8"))
FEDERATION_MD = (V1 / "federation.md").read_text(encoding="utf-8")


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _header_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "X-VibeMUSE"
    return {name: value.strip('"') for name, value in (part.split("=", 1) for part in rest.split(","))}


def test_canonical_json_is_the_signed_object_encoded():
    signed = EXAMPLE["signed"]
    encoded = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert EXAMPLE["canonical_json"] == encoded
    assert signed["content"] == json.loads((V1 / "examples/federation/transaction.json").read_text())


def test_signature_verifies_with_the_published_example_key():
    params = _header_params(EXAMPLE["authorization"])
    keys = json.loads((V1 / "examples/http/server-keys.json").read_text())["verify_keys"]
    public = Ed25519PublicKey.from_public_bytes(_b64(keys[params["key"]]["key"]))
    public.verify(_b64(params["sig"]), EXAMPLE["canonical_json"].encode("utf-8"))
    assert EXAMPLE["verify_key"] == {params["key"]: keys[params["key"]]["key"]}
    signed = EXAMPLE["signed"]
    assert (params["origin"], params["destination"], int(params["ts"]), params["nonce"]) == (
        signed["origin"], signed["destination"], signed["ts"], signed["nonce"])


def test_federation_md_quotes_the_example():
    assert f"Authorization: {EXAMPLE['authorization']}\n" in FEDERATION_MD
    assert f"`canonical_json` the exact {len(EXAMPLE['canonical_json'].encode())} bytes" in FEDERATION_MD
    (key_id, key), = EXAMPLE["verify_key"].items()
    assert f"public key\n`{key}`" in FEDERATION_MD and key_id in FEDERATION_MD
    answer = json.loads((V1 / "examples/federation/transaction-answer.json").read_text())
    (event_id,) = answer["pdus"]
    assert f'{{"pdus": {{"{event_id}": {{}}}}}}' in FEDERATION_MD
