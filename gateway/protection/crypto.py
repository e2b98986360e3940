"""Encryption at rest: AES-GCM under keys by id, and keyed hashes for searchable identifiers.

A stored value reads `cb1:<key id>:<base64 of nonce + ciphertext>`; the additional
authenticated data names the column, so a value copied into another column fails to open.
Keys come from configuration (`CASEBRIDGE_KEY_FILE` or `CASEBRIDGE_KEYS`), never from the
repository or the database. The active key encrypts; every key in the ring decrypts, so
keys rotate: add a key, make it active, run `casebridge keys rotate`, then retire the old.

Searchable identifiers (a person's case number, say) are stored as HMAC-SHA-256 digests
under an index key derived from each encryption key; a lookup computes the digest under
every key in the ring, so it finds rows hashed before and after a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import ConfigurationError

if TYPE_CHECKING:
    from gateway.settings import Settings

PREFIX = "cb1"
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
NONCE_BYTES = 12


class DecryptionError(ConfigurationError):
    """A stored value cannot be opened: unknown key id, wrong key, or altered bytes."""


def new_key_line(key_id: str) -> str:
    """A fresh 256-bit key as one line of a key file: `<id>:<base64>`."""
    if not KEY_ID.match(key_id):
        raise ConfigurationError(f"key id '{key_id}' must be letters, digits, . _ - (≤ 40)")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


@dataclass(frozen=True)
class Keyring:
    """Keys by id; `active` encrypts, all decrypt."""

    keys: dict[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ConfigurationError(f"the active key '{self.active}' is not in the key ring")

    @classmethod
    def parse(cls, text: str, *, active: str | None = None, source: str = "keys") -> Keyring:
        """Keys from lines or comma-separated items `<id>:<base64 of 32 bytes>`.

        The last key listed is the active one unless `active` names another.
        """
        keys: dict[str, bytes] = {}
        # A comment is a whole line: it may hold commas, which separate keys elsewhere.
        items = [item.strip() for line in text.splitlines()
                 if not line.lstrip().startswith("#") for item in line.split(",")]
        for number, item in enumerate((i for i in items if i), 1):
            key_id, _, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError:
                key = b""
            if not KEY_ID.match(key_id) or len(key) != 32:
                raise ConfigurationError(
                    f"{source}: key {number} must be '<id>:<base64 of 32 random bytes>'")
            if key_id in keys:
                raise ConfigurationError(f"{source}: key id '{key_id}' appears twice")
            keys[key_id] = key
        if not keys:
            raise ConfigurationError(f"{source}: no key")
        return cls(keys, active or list(keys)[-1])

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The ring configured by CASEBRIDGE_KEY_FILE and/or CASEBRIDGE_KEYS."""
        text, sources = "", []
        if settings.key_file is not None:
            try:
                text += settings.key_file.read_text() + "\n"
            except OSError as error:
                raise ConfigurationError(
                    f"CASEBRIDGE_KEY_FILE {settings.key_file}: {error.strerror}") from error
            sources.append(str(settings.key_file))
        if settings.keys is not None:
            text += settings.keys.get_secret_value()
            sources.append("CASEBRIDGE_KEYS")
        if not sources:
            raise ConfigurationError(
                "no encryption key: set CASEBRIDGE_KEY_FILE (make one with `casebridge keys "
                "new`) or CASEBRIDGE_KEYS; personal data is never stored unencrypted")
        return cls.parse(text, active=settings.active_key, source=" + ".join(sources))

    # -- encryption ---------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, *, aad: bytes) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext, aad)
        return f"{PREFIX}:{self.active}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str, *, aad: bytes) -> bytes:
        key_id = key_id_of(token)
        if key_id is None:
            raise DecryptionError("a stored value is not in the encrypted format")
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionError(
                f"a stored value is encrypted under key '{key_id}', which is not in the key "
                "ring: add it back to CASEBRIDGE_KEY_FILE")
        raw = base64.b64decode(token.rsplit(":", 1)[1])
        try:
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except InvalidTag as error:
            raise DecryptionError(
                f"a value under key '{key_id}' fails authentication: altered, or moved "
                "from another column") from error

    # -- keyed hashes -------------------------------------------------------------------
    def digests(self, value: str) -> list[str]:
        """The keyed hash of `value` under every key, the active key's first."""
        order = [self.active, *(k for k in self.keys if k != self.active)]
        return [_digest(self.keys[k], value) for k in order]

    def digest(self, value: str) -> str:
        """The keyed hash to store for `value` now (under the active key)."""
        return _digest(self.keys[self.active], value)


def key_id_of(token: str) -> str | None:
    """The key id a stored value is encrypted under, or None for a value that is not."""
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    return parts[1]


def _digest(key: bytes, value: str) -> str:
    index_key = _index_key(key)
    return hmac.new(index_key, value.encode(), hashlib.sha256).hexdigest()


_INDEX_KEYS: dict[bytes, bytes] = {}


def _index_key(key: bytes) -> bytes:
    """A key for identifier hashes only, derived so the encryption key is never reused."""
    derived = _INDEX_KEYS.get(key)
    if derived is None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"casebridge identifier index v1").derive(key)
        _INDEX_KEYS[key] = derived
    return derived


# -- the process's key ring --------------------------------------------------------------
_ring: Keyring | None = None


def use_keyring(keyring: Keyring) -> None:
    """Make `keyring` the one the store encrypts and decrypts with in this process."""
    global _ring
    _ring = keyring


def keyring() -> Keyring:
    """The process's key ring, read from the settings at first use."""
    global _ring
    if _ring is None:
        from gateway.settings import get_settings

        _ring = Keyring.from_settings(get_settings())
    return _ring


def key_file_path(path: Path) -> Path:
    """Where `keys new` writes: the folder is made, the file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    return path
