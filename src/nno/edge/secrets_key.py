"""The key that seals the local cloud's Worker secrets: made once and kept, unless one is configured.

- `NNO_SECRETS_KEY` set: its comma-separated keys; the first seals, the others are still read (a
  rotation in progress). Every process that hosts Workers or runs provisioning needs the same value.
- Otherwise the key file `{data_dir}/cloud/secrets.key`, one key per line in the same format (so its
  key can be moved into NNO_SECRETS_KEY as is). It is made (32 random bytes) the first time a
  secret is sealed, written to a temporary file with mode 0600 and linked into place, so processes
  starting together agree on one key. Processes on different hosts (a scaled installation shares
  only PostgreSQL and Redis) are each given the same NNO_SECRETS_KEY instead: the key is kept
  apart from the database that holds what it seals.

The key no longer depends on AUTH_API_KEY or the data directory's path, so moving the data directory
or turning authentication on keeps every secret readable. Values sealed by earlier versions (a key
derived from the signing secret) are read with those derivations and re-sealed with the kept key.

`rotate` re-seals everything with a new key in one transaction; see docs/secrets-key.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import func, select, text

from nno.edge.models import WorkerSecret
from nno.edge.secretbox import (
    DOCS,
    MAGIC,
    SealingKey,
    SecretBox,
    SecretsKeyError,
    legacy_key,
    sealed_key_id,
    sealing_key,
)
from nno.kernel.config import Settings
from nno.kernel.db import Database

log = structlog.get_logger("nno.edge.secrets_key")

KEY_FILE_NAME = "secrets.key"
# A key NNO makes: 32 random bytes, base64url without padding.
_FILE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MIN_CONFIGURED_KEY_CHARS = 32
_FILE_HEADER = (
    "# NNO secrets key: seals the local cloud's Worker secrets. Keep it with the data directory\n"
    "# (mode 0600) and in its backups: without it those secrets cannot be read. The first key seals,\n"
    f"# any other is still read while a rotation runs (`nno admin rotate-secrets-key`, {DOCS}).\n"
)


def key_file_path(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "cloud" / KEY_FILE_NAME


def new_key_text() -> str:
    return secrets.token_urlsafe(32)


def _derived_signing_secret(base: str) -> bytes:
    # Earlier versions keyed the secrets with `Settings.signing_secret`; this is its derivation.
    return hmac.new(b"nno-service-token", base.encode(), hashlib.sha256).digest()


def legacy_masters(settings: Settings, data_dirs: Iterable[Path] = (), api_keys: Iterable[str] = ()) -> list[bytes]:
    """Every signing secret an earlier version may have sealed this install's secrets with: the one
    configured now, the one AUTH_API_KEY gives, and the dev-mode one of each data directory path
    (the current one first; `data_dirs` adds where the directory used to be)."""
    out: list[bytes] = []
    if settings.service_token_secret:
        out.append(settings.service_token_secret.encode())
    for key in (settings.auth_api_key, *api_keys):
        if key:
            out.append(_derived_signing_secret(key))
    for directory in (settings.data_dir, *data_dirs):
        out.append(_derived_signing_secret(f"dev-insecure:{Path(directory).resolve()}"))
    unique: list[bytes] = []
    for master in out:
        if master not in unique:
            unique.append(master)
    return unique


def parse_key_file(path: Path, content: str) -> list[str]:
    keys: list[str] = []
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _FILE_KEY_RE.match(line) or len(_b64decode(line)) != 32:
            raise SecretsKeyError(
                f"the secrets key file {path} is damaged: line {number} is not a key NNO made. Restore the "
                "file from a backup of the data directory; do not delete it, since the secrets sealed with it "
                f"cannot be read without it (see {DOCS})"
            )
        keys.append(line)
    if not keys:
        raise SecretsKeyError(
            f"the secrets key file {path} holds no key. Restore it from a backup of the data directory "
            f"(see {DOCS})"
        )
    return keys


def _b64decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return b""


def parse_configured(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",")]
    if not all(keys) or any(len(k) < MIN_CONFIGURED_KEY_CHARS or any(c.isspace() for c in k) for k in keys):
        raise SecretsKeyError(
            f"NNO_SECRETS_KEY must be one or more comma-separated keys of at least {MIN_CONFIGURED_KEY_CHARS} "
            "characters without spaces (make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            f"; see {DOCS})"
        )
    return keys


def write_key_file(path: Path, keys: list[str], *, exclusive: bool) -> None:
    """Write `keys` atomically with mode 0600. `exclusive`: only if no key file exists yet (a
    concurrent creator wins, and everyone then reads its key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    content = (_FILE_HEADER + "".join(k + "\n" for k in keys)).encode()
    _write_new(tmp, content)
    try:
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links: create it in place, still exclusively
                try:
                    _write_new(path, content)
                except FileExistsError:
                    pass
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_new(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


class Keyring:
    """The kept keys of one install as a `SecretBox`. The key file is read again whenever it changes,
    so a rotation run by another process (`nno admin rotate-secrets-key`) is seen at the next seal or
    open."""

    def __init__(self, settings: Settings, *, legacy_data_dirs: Iterable[Path] = ()) -> None:
        self.path = key_file_path(settings)
        self.configured = settings.secrets_key
        self._legacy = [legacy_key(m) for m in legacy_masters(settings, legacy_data_dirs)]
        self._stamp: tuple[int, int, int] | None = None
        self._box: SecretBox | None = None
        self._keys: list[str] = []

    @property
    def source(self) -> str:
        return "NNO_SECRETS_KEY" if self.configured else f"the key file {self.path}"

    def _build(self, keys: list[str]) -> SecretBox:
        made: list[SealingKey] = [sealing_key(k.encode()) for k in keys]
        return SecretBox(made, self._legacy, source=self.source)

    def box(self) -> SecretBox:
        """The current keys. With no key file yet, a box that only reads legacy values."""
        if self.configured:
            if self._box is None:
                self._keys = parse_configured(self.configured)
                self._box = self._build(self._keys)
            return self._box
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._keys = None, []
            return SecretBox([], self._legacy, source=f"the key file {self.path}, which does not exist,")
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._box is None or stamp != self._stamp:
            if st.st_mode & 0o077:
                log.warning("secrets_key_file_open_to_others", path=str(self.path), mode=oct(st.st_mode & 0o777),
                            fix=f"chmod 600 {self.path}")
            self._keys = parse_key_file(self.path, self.path.read_text(encoding="utf-8", errors="replace"))
            self._box, self._stamp = self._build(self._keys), stamp
        return self._box

    def keys(self) -> list[str]:
        self.box()
        return list(self._keys)

    def create(self) -> None:
        write_key_file(self.path, [new_key_text()], exclusive=True)

    def write(self, keys: list[str]) -> None:
        write_key_file(self.path, keys, exclusive=False)


def missing_key_error(path: Path) -> SecretsKeyError:
    return SecretsKeyError(
        f"the secrets key file {path} is missing, and secrets sealed with it exist. Restore it from a backup "
        "of the data directory (or set NNO_SECRETS_KEY to the key it held); every process that hosts Workers "
        "or runs provisioning must share NNO_DATA_DIR. NNO makes no new key over secrets it could then no "
        f"longer read (see {DOCS})"
    )


async def ensure_key(db: Database, keyring: Keyring) -> tuple[SecretBox, bool]:
    """The box that seals new values, and whether its key was made just now. A missing key file is
    replaced only while no value sealed with a kept key exists."""
    box = keyring.box()
    if box.keys:
        return box, False
    if await has_sealed(db, legacy=False):
        raise missing_key_error(keyring.path)
    keyring.create()
    return keyring.box(), True


async def has_sealed(db: Database, *, legacy: bool) -> bool:
    """Whether any secret is sealed with a kept key (`legacy` False) or by an earlier version's key."""
    prefix = func.substr(WorkerSecret.ciphertext, 1, len(MAGIC))
    condition = prefix != MAGIC if legacy else prefix == MAGIC
    async with db.session() as s:
        return (await s.execute(select(WorkerSecret.worker).where(condition).limit(1))).first() is not None


@dataclass
class ResealReport:
    resealed: int = 0
    current: int = 0
    # What could not be opened, with the reason (each names its fix), and the key ids (hex, or
    # "legacy") those values still need.
    unreadable: list[str] = field(default_factory=list)
    stuck_on: set[str] = field(default_factory=set)


async def reseal(db: Database, box: SecretBox, *, legacy_only: bool = False) -> ResealReport:
    """Re-seal every secret not sealed with `box`'s current key, in one transaction that holds the
    rows. What cannot be opened is left as it is and reported (nothing is ever dropped)."""
    report = ResealReport()
    current = box.current
    async with db.session() as s:
        if db.is_sqlite:  # take the write lock before reading, so no writer slips in between
            await s.execute(text("UPDATE worker_secrets SET key = key WHERE 1 = 0"))
        q = select(WorkerSecret).order_by(WorkerSecret.worker, WorkerSecret.key)
        if legacy_only:
            q = q.where(func.substr(WorkerSecret.ciphertext, 1, len(MAGIC)) != MAGIC)
        if not db.is_sqlite:
            q = q.with_for_update()
        for row in (await s.scalars(q)).all():
            if sealed_key_id(row.ciphertext) == current.id:
                report.current += 1
                continue
            address = f"{row.worker}/{row.key}"
            try:
                value = box.open(address, row.ciphertext)
            except SecretsKeyError as exc:
                report.unreadable.append(str(exc))
                key_id = sealed_key_id(row.ciphertext)
                report.stuck_on.add(key_id.hex() if key_id is not None else "legacy")
                continue
            row.ciphertext = box.seal(address, value)
            report.resealed += 1
    return report


@dataclass
class RotationReport:
    key_id: str
    source: str
    resealed: int
    current: int
    retired: list[str]
    # Older keys still held because some value sealed with them could not be re-sealed.
    kept: list[str]
    unreadable: list[str]
    resumed: bool

    @property
    def finished(self) -> bool:
        return not self.kept and not self.unreadable


async def rotate(db: Database, keyring: Keyring, *, new_key: bool = True) -> RotationReport:
    """Seal every secret with a new key and forget the old one.

    Key file: (1) the new key is written in front of the old one, so every process seals with it and
    still reads both; (2) every value is re-sealed in one transaction; (3) the old key is dropped, and
    anything another process sealed with it meanwhile is re-sealed too. Interrupted anywhere, a second
    run finishes the same rotation (a file with several keys is a rotation in progress).
    NNO_SECRETS_KEY: the operator puts the new key first themselves; this re-seals, then says which
    keys may go."""
    if keyring.configured:
        box = keyring.box()
        report = await reseal(db, box)
        held_old = {k.hex_id for k in box.keys[1:]}
        kept = sorted(held_old & report.stuck_on)
        return RotationReport(box.current.hex_id, keyring.source, report.resealed, report.current,
                              sorted(held_old - report.stuck_on), kept, report.unreadable, resumed=False)
    _, made = await ensure_key(db, keyring)
    keys = keyring.keys()
    resumed = len(keys) > 1
    if not resumed and new_key and not made:
        keys = [new_key_text(), *keys]
        keyring.write(keys)
    box = keyring.box()
    report = await reseal(db, box)
    held_old = {k.hex_id for k in box.keys[1:]}
    kept = sorted(held_old & report.stuck_on)
    if not kept and len(keys) > 1:
        keyring.write(keys[:1])
        late = await reseal(db, box)  # `box` still holds the old keys
        report.resealed += late.resealed
    return RotationReport(box.current.hex_id, keyring.source, report.resealed, report.current,
                          sorted(held_old) if not kept else [], kept, report.unreadable, resumed=resumed)
