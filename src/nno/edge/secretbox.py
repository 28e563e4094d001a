"""Encryption at rest for Worker secrets: AES-256-GCM with a key derived (HKDF) from the install's
signing secret, and the secret's address (`worker/key`) as associated data so a ciphertext cannot be
moved to another secret. Values are decrypted only to hand them to the Worker that owns them."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


class SecretBox:
    def __init__(self, master: bytes) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"nno-local-cloud", info=b"worker-secrets").derive(
            master
        )
        self._aead = AESGCM(key)

    def seal(self, address: str, value: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, value.encode(), address.encode())

    def open(self, address: str, sealed: bytes) -> str:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, address.encode()).decode()
