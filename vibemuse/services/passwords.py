"""Password hashing (scrypt) and the password policy.

Hashes are stored self-describing, ``scrypt$ln=15,r=8,p=1$<salt>$<hash>``
(unpadded base64), so the cost can be raised later without breaking old
hashes. Checking runs the same work whether or not the account exists, so a
login's timing does not tell which usernames are taken.
"""

from __future__ import annotations

import base64
import hmac
import os
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vibemuse.protocol.errors import ErrorCode, ProtocolError

MAX_PASSWORD_LENGTH = 1024
_COMMON = frozenset(
    """password password1 password123 12345678 123456789 1234567890 qwertyui qwerty123 iloveyou
    11111111 00000000 abc12345 letmein1 welcome1 sunshine princess football baseball dragon12
    monkey12 trustno1 passw0rd p@ssw0rd superman starwars""".split()
)


@dataclass(frozen=True)
class PasswordHasher:
    log_n: int = 15
    r: int = 8
    p: int = 1

    def hash(self, password: str) -> str:
        salt = os.urandom(16)
        digest = self._derive(password, salt, self.log_n, self.r, self.p)
        return f"scrypt$ln={self.log_n},r={self.r},p={self.p}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, stored: str | None) -> bool:
        """True if ``password`` matches ``stored``; with ``stored`` None, does the work and says False."""
        if stored is None:
            self._derive(password, b"\0" * 16, self.log_n, self.r, self.p)
            return False
        try:
            scheme, params, salt, digest = stored.split("$")
            values = dict(item.split("=") for item in params.split(","))
            log_n, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        except (ValueError, KeyError):
            return False
        if scheme != "scrypt":
            return False
        actual = self._derive(password, _unb64(salt), log_n, r, p)
        return hmac.compare_digest(actual, _unb64(digest))

    @staticmethod
    def _derive(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
        kdf = Scrypt(salt=salt, length=32, n=2**log_n, r=r, p=p)
        return kdf.derive(unicodedata.normalize("NFKC", password).encode("utf-8"))


def check_password_policy(password: object, username: str, min_length: int) -> str:
    """Return ``password`` if acceptable, else raise ``weak_password`` saying why."""
    if not isinstance(password, str) or not password:
        raise ProtocolError(ErrorCode.WEAK_PASSWORD, "A password is required.")
    if len(password) < min_length:
        raise ProtocolError(ErrorCode.WEAK_PASSWORD, f"Passwords are at least {min_length} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ProtocolError(ErrorCode.WEAK_PASSWORD, f"Passwords are at most {MAX_PASSWORD_LENGTH} characters long.")
    folded = password.casefold()
    if len(set(password)) < 3 or folded in _COMMON or username.casefold() in folded:
        raise ProtocolError(
            ErrorCode.WEAK_PASSWORD,
            "That password is too easy to guess (common, repetitive, or containing the username).",
        )
    return password


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))
