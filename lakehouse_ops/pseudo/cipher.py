"""Pseudonym tokens: AES-SIV (RFC 5297) with a key version inside every token.

Deterministic mode encrypts with fixed associated data, so a value always yields the same token (joins and
group-bys keep working). Randomized mode adds a random 16-byte nonce as associated data, so a value yields a new
token every time. Either way the token carries the key version, so keys can rotate and old tokens still
re-identify. The service and the in-executor mode share this module, so both produce the same tokens.

token = base64( version[1] | mode[1] | nonce[16] (randomized only) | siv[16] | ciphertext )
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Dict, Optional

from lakehouse_ops.errors import LakehouseOpsError

DETERMINISTIC, RANDOMIZED = b"D", b"R"
# Bound into every token: a deterministic token never opens as a randomized one, or the other way round.
ASSOCIATED_DATA = {
    DETERMINISTIC: b"lakehouse-ops/pseudonym/deterministic",
    RANDOMIZED: b"lakehouse-ops/pseudonym/randomized",
}
NONCE_BYTES = 16
KEY_BYTES = 64  # AES-256-SIV takes two 256-bit keys


class KeyMaterialError(LakehouseOpsError):
    """The key material is missing, malformed, or does not have the version a token names."""


class TokenError(LakehouseOpsError):
    """A token is malformed or does not decrypt under its key version (never says what the value was)."""


@dataclass(frozen=True)
class Keyring:
    """Key versions (1-255) -> 64-byte AES-SIV keys; `current` encrypts, every version decrypts."""

    current: int
    keys: Dict[int, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyMaterialError("the current key version %d has no key" % self.current)
        for version, key in self.keys.items():
            if not 1 <= version <= 255:
                raise KeyMaterialError("key version %r is outside 1-255" % version)
            if len(key) != KEY_BYTES:
                raise KeyMaterialError(
                    "key version %d is %d bytes; AES-256-SIV needs %d" % (version, len(key), KEY_BYTES)
                )

    @classmethod
    def from_json(cls, text: str, source: str = "key material") -> "Keyring":
        """`{"current": 2, "keys": {"1": "<base64>", "2": "<base64>"}}` (a Secrets Manager secret or key file)."""
        try:
            data = json.loads(text)
            keys = {int(v): base64.b64decode(k, validate=True) for v, k in data["keys"].items()}
            return cls(current=int(data["current"]), keys=keys)
        except KeyMaterialError:
            raise
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise KeyMaterialError(
                "%s is not of the form "
                '{"current": N, "keys": {"N": "<base64 of 64 bytes>"}}: '
                "%s" % (source, type(exc).__name__)
            ) from None

    @classmethod
    def generate(cls, versions: int = 1) -> "Keyring":
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        return cls(current=versions, keys={v: AESSIV.generate_key(512) for v in range(1, versions + 1)})

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(self.keys.items())},
            }
        )

    def rotated(self) -> "Keyring":
        """A keyring with a new current version; the old versions stay for re-identification."""
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        version = max(self.keys) + 1
        keys = dict(self.keys)
        keys[version] = AESSIV.generate_key(512)
        return Keyring(current=version, keys=keys)


def token_version(token: str) -> Optional[int]:
    """The key version a token names (its first byte), or None for a value that is not a token."""
    try:
        payload = base64.b64decode(token[:4], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None
    return payload[0] if payload and len(token) >= 24 else None


class Cipher:
    """Tokens under a keyring's keys (one AES-SIV instance per key version)."""

    def __init__(self, keyring: Keyring) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV

        self.keyring = keyring
        self._siv = {version: AESSIV(key) for version, key in keyring.keys.items()}

    def pseudonymize(self, value: str, deterministic: bool = True, version: Optional[int] = None) -> str:
        """The token of `value` under the current key version (or `version`, to match tokens written before a
        rotation)."""
        data = value.encode("utf-8")
        version = self.keyring.current if version is None else version
        if version not in self._siv:
            raise KeyMaterialError("no key version %d in the keyring" % version)
        if deterministic:
            sealed = self._siv[version].encrypt(data, [ASSOCIATED_DATA[DETERMINISTIC]])
            payload = bytes([version]) + DETERMINISTIC + sealed
        else:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._siv[version].encrypt(data, [ASSOCIATED_DATA[RANDOMIZED], nonce])
            payload = bytes([version]) + RANDOMIZED + nonce + sealed
        return base64.b64encode(payload).decode("ascii")

    def reidentify(self, token: str) -> str:
        try:
            payload = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise TokenError("not a pseudonym token (bad base64)") from None
        if len(payload) < 2 + 16:
            raise TokenError("not a pseudonym token (too short)")
        version, mode = payload[0], payload[1:2]
        siv = self._siv.get(version)
        if siv is None:
            raise TokenError("token names key version %d, which this keyring does not hold" % version)
        try:
            if mode == DETERMINISTIC:
                data = siv.decrypt(payload[2:], [ASSOCIATED_DATA[DETERMINISTIC]])
            elif mode == RANDOMIZED:
                nonce = payload[2 : 2 + NONCE_BYTES]
                data = siv.decrypt(payload[2 + NONCE_BYTES :], [ASSOCIATED_DATA[RANDOMIZED], nonce])
            else:
                raise TokenError("not a pseudonym token (unknown mode)")
        except TokenError:
            raise
        except Exception:
            raise TokenError("token does not authenticate under key version %d" % version) from None
        return data.decode("utf-8")
