"""Encryption at rest for Worker secrets: AES-256-GCM, with the secret's address (`worker/key`) as
associated data so a ciphertext cannot be moved to another secret. Values are decrypted only to hand
them to the Worker that owns them.

A sealed value names the key that sealed it: `nnok1` + key id (8 bytes) + nonce + ciphertext. The
keys themselves are kept by `nno.edge.secrets_key` (a key file in the data directory, or
NNO_SECRETS_KEY). A value without that header was sealed by an earlier NNO with a key derived from
the install's signing secret; the box reads those with the `legacy` keys it is given, never seals
with them, and the local cloud re-seals them with the kept key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"nnok1"
KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES
_SALT = b"nno-local-cloud"
DOCS = "docs/secrets-key.md"


class SecretsKeyError(Exception):
    """A secret cannot be sealed or opened with the keys this process holds; the message names the fix."""


@dataclass(frozen=True)
class SealingKey:
    id: bytes
    aead: AESGCM

    @property
    def hex_id(self) -> str:
        return self.id.hex()


def sealing_key(material: bytes) -> SealingKey:
    """The AES key and its public id, both derived from a kept key's text."""
    okm = HKDF(algorithm=hashes.SHA256(), length=32 + KEY_ID_BYTES, salt=_SALT,
               info=b"worker-secrets-v2").derive(material)
    return SealingKey(id=okm[32:], aead=AESGCM(okm[:32]))


def legacy_key(master: bytes) -> AESGCM:
    """The key earlier versions derived from the install's signing secret (read-only fallback)."""
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=b"worker-secrets").derive(master))


def sealed_key_id(sealed: bytes) -> bytes | None:
    """The id of the key that sealed `sealed`, or None for a value sealed by a legacy derived key."""
    if len(sealed) > _HEADER_BYTES and sealed.startswith(MAGIC):
        return bytes(sealed[len(MAGIC):_HEADER_BYTES])
    return None


class SecretBox:
    """Seals with the first of `keys`; opens with any of them, or with a legacy key for old values.
    `source` says where the keys come from, for error messages."""

    def __init__(self, keys: Sequence[SealingKey], legacy: Sequence[AESGCM] = (), *, source: str = "") -> None:
        self.keys = tuple(keys)
        self.legacy = tuple(legacy)
        self.source = source or "the configured secrets key"
        self._by_id = {k.id: k for k in self.keys}

    @property
    def current(self) -> SealingKey:
        if not self.keys:
            raise SecretsKeyError(f"no secrets key: {self.source} holds none (see {DOCS})")
        return self.keys[0]

    def is_current(self, sealed: bytes) -> bool:
        return bool(self.keys) and sealed_key_id(sealed) == self.keys[0].id

    def seal(self, address: str, value: str) -> bytes:
        key = self.current
        nonce = os.urandom(_NONCE_BYTES)
        return MAGIC + key.id + nonce + key.aead.encrypt(nonce, value.encode(), address.encode())

    def open(self, address: str, sealed: bytes) -> str:
        key_id = sealed_key_id(sealed)
        if key_id is None:
            return self._open_legacy(address, bytes(sealed))
        key = self._by_id.get(key_id)
        if key is None:
            held = ", ".join(k.hex_id for k in self.keys) or "none"
            raise SecretsKeyError(
                f"secret {address} was sealed with secrets key {key_id.hex()}, which {self.source} does not "
                f"hold (it holds: {held}). Restore the key file that holds it from a backup of the data "
                "directory, or set NNO_SECRETS_KEY to that key; every process that hosts Workers or runs "
                f"provisioning must share NNO_DATA_DIR or set the same NNO_SECRETS_KEY (see {DOCS})"
            )
        body = sealed[_HEADER_BYTES:]
        try:
            return key.aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], address.encode()).decode()
        except InvalidTag:
            raise SecretsKeyError(
                f"secret {address} does not decrypt with secrets key {key.hex_id}, the key it names: the "
                "stored value is damaged: restore the local cloud's database from a backup, or set the secret "
                f"again (see {DOCS})"
            ) from None

    def _open_legacy(self, address: str, sealed: bytes) -> str:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        for aead in self.legacy:
            try:
                return aead.decrypt(nonce, ciphertext, address.encode()).decode()
            except InvalidTag:
                continue
        raise SecretsKeyError(
            f"secret {address} was sealed by an earlier NNO with a key derived from AUTH_API_KEY, "
            "NNO_SERVICE_TOKEN_SECRET or the data directory's path at that time, and none of those opens it "
            "now. Run `nno admin rotate-secrets-key --legacy-data-dir OLD_ABSOLUTE_PATH` (where the data "
            "directory was when the secret was set), or with the AUTH_API_KEY / NNO_SERVICE_TOKEN_SECRET of "
            f"that time in its environment, to re-seal it with the kept key (see {DOCS})"
        )
