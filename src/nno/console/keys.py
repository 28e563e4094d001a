"""The ShellContext keys: one per platform, derived with HKDF-SHA256 from a dedicated secret.

The secret is not the installation's signing secret (service tokens) nor the secrets key (Worker
secrets): leaking or rotating one leaves the others alone.

- `NNO_SHELL_SECRET` set: its comma-separated secrets (at least 32 characters each). The first signs;
  the others are still believed while a rotation runs (put the new one first, drop the old one once
  every open page has been reloaded: contexts live 10 minutes).
- Otherwise the key file `{data_dir}/cloud/shell.key`, one secret a line in the same order, made (32
  random bytes) the first time it is needed, written with mode 0600 and linked into place so
  processes starting together agree on one secret (scaled out, they share NNO_DATA_DIR already).

A platform's key is `HKDF(secret, salt="nno-shell-context", info="platform:{platformId}")`: the shell
of platform A signs with A's key, and B's feature Workers, holding only B's, never believe it.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nno.kernel.config import Settings

KEY_FILE_NAME = "shell.key"
SALT = b"nno-shell-context"
MIN_SECRET_CHARS = 32
_HEADER = ("# NNO ShellContext secret: each platform's console-shell key derives from the first line;\n"
           "# later lines are still believed while a rotation runs (docs/console-shell.md).\n")


class ShellSecretError(RuntimeError):
    pass


def derive(secret: bytes, platform_id: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT,
                info=f"platform:{platform_id}".encode()).derive(secret)


def parse_secrets(text: str, *, source: str) -> list[bytes]:
    found = [line.strip() for line in text.replace(",", "\n").splitlines()
             if line.strip() and not line.strip().startswith("#")]
    if not found:
        raise ShellSecretError(f"{source} holds no ShellContext secret")
    short = [i for i, value in enumerate(found, 1) if len(value) < MIN_SECRET_CHARS]
    if short:
        raise ShellSecretError(f"{source}: ShellContext secret {short[0]} is shorter than {MIN_SECRET_CHARS} "
                               "characters")
    return [value.encode() for value in found]


def key_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "cloud" / KEY_FILE_NAME


@lru_cache(maxsize=16)
def _file_secrets(path: Path) -> tuple[bytes, ...]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-shell-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(_HEADER + secrets.token_urlsafe(32) + "\n")
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # the first process to get here wins; the others read its file
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    return tuple(parse_secrets(path.read_text(), source=str(path)))


def shell_secrets(settings: Settings) -> tuple[bytes, ...]:
    configured = settings.shell_secret
    if configured:
        return tuple(parse_secrets(configured, source="NNO_SHELL_SECRET"))
    return _file_secrets(key_file(settings))


def platform_keys(settings: Settings, platform_id: str) -> tuple[bytes, ...]:
    """The platform's ShellContext keys: the first signs, every one is believed."""
    return tuple(derive(secret, platform_id) for secret in shell_secrets(settings))
