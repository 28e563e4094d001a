"""Identifiers and secrets: 10-character NanoIDs over [a-z0-9] (DECISIONS 9) and opaque tokens."""

from __future__ import annotations

import hashlib
import secrets

from nanoid import generate

ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 10


def new_id(size: int = ID_LENGTH) -> str:
    return str(generate(ID_ALPHABET, size))


def new_token(nbytes: int = 32) -> str:
    """An opaque URL-safe secret (sessions, magic links, device codes, API keys)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """How every bearer secret is stored: its SHA-256 hex digest, looked up by digest."""
    return hashlib.sha256(token.encode()).hexdigest()
