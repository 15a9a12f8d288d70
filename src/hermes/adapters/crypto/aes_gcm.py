"""AES-256-GCM envelopes for credentials at rest.

Envelope layout: version (1 byte) | key id length (1 byte) | key id | nonce (12 bytes)
| ciphertext + 16-byte tag. The header and the caller's context are the associated
data, so neither the key id nor the customer/platform binding can be swapped.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hermes.application.ports.credentials import Cipher

_VERSION = 1
_NONCE_BYTES = 12
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")


class KeyringError(ValueError):
    """`HERMES_ENCRYPTION_KEYS` is missing or malformed; the message says how to fix it."""


def parse_keyring(value: str | None) -> list[tuple[str, bytes]]:
    """`kid:base64key,...` -> [(kid, 32-byte key)], first one encrypts."""
    hint = "set HERMES_ENCRYPTION_KEYS to kid:base64key[,kid:base64key...] with 32-byte keys"
    if not value or not value.strip():
        raise KeyringError(f"HERMES_ENCRYPTION_KEYS is not set: {hint}")
    keys: list[tuple[str, bytes]] = []
    for position, item in enumerate(value.split(","), start=1):
        kid, sep, encoded = item.strip().partition(":")
        if not sep or not _KID.match(kid):
            raise KeyringError(f"HERMES_ENCRYPTION_KEYS entry {position} has no valid key id: {hint}")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"HERMES_ENCRYPTION_KEYS key {kid!r} is not valid base64: {hint}") from None
        if len(key) != 32:
            raise KeyringError(f"HERMES_ENCRYPTION_KEYS key {kid!r} is {len(key)} bytes, AES-256 needs 32: {hint}")
        if any(kid == k for k, _ in keys):
            raise KeyringError(f"HERMES_ENCRYPTION_KEYS names key id {kid!r} twice")
        keys.append((kid, key))
    return keys


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class AesGcmCipher(Cipher):
    def __init__(self, keyring: list[tuple[str, bytes]]) -> None:
        if not keyring:
            raise KeyringError("at least one encryption key is required")
        # One AESGCM object per key: building it per call costs more than the encryption.
        self._keys = {kid: AESGCM(key) for kid, key in keyring}
        self._current_kid = keyring[0][0]
        self._current_header = self._header(self._current_kid)

    @staticmethod
    def _header(kid: str) -> bytes:
        encoded = kid.encode()
        return bytes((_VERSION, len(encoded))) + encoded

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        header = self._current_header
        sealed = self._keys[self._current_kid].encrypt(nonce, plaintext, header + context)
        return header + nonce + sealed

    def decrypt(self, envelope: bytes, context: bytes) -> bytes:
        if len(envelope) < 2 or envelope[0] != _VERSION:
            raise ValueError("unknown envelope version")
        kid_end = 2 + envelope[1]
        kid = envelope[2:kid_end].decode(errors="replace")
        aead = self._keys.get(kid)
        if aead is None:
            raise ValueError(f"envelope sealed with unknown key id {kid!r}")
        nonce = envelope[kid_end : kid_end + _NONCE_BYTES]
        if len(nonce) != _NONCE_BYTES:
            raise ValueError("truncated envelope")
        try:
            return aead.decrypt(nonce, envelope[kid_end + _NONCE_BYTES :], envelope[:kid_end] + context)
        except InvalidTag:
            raise ValueError("envelope does not authenticate") from None

    def is_current(self, envelope: bytes) -> bool:
        return envelope.startswith(self._current_header)
