"""The CLI's credentials file, `~/.nno/credentials.json` (spec billing-cli-shell §4.3).

Stdlib only, so every command can read it without slowing `nno --help`. The directory is created
0700 and the file is written atomically (a temporary file in the same directory, then
`os.replace`) with mode 0600, so a crash never leaves a half-written or world-readable token.
`NNO_HOME` points at the directory itself; otherwise it is `$HOME/.nno`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nno.cli.errors import CLIError

FILE_NAME = "credentials.json"


def nno_home() -> Path:
    explicit = os.environ.get("NNO_HOME")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".nno"


def credentials_path() -> Path:
    return nno_home() / FILE_NAME


def load() -> dict[str, Any]:
    """The stored credentials, or `{}` when there are none (no file, or cleared by `nno logout`)."""
    path = credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror or exc}", hint="Check the file's permissions.") from exc
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CLIError(f"{path} is not valid JSON", hint="Run: nno login (it rewrites the file).") from exc
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any]) -> Path:
    """Write the credentials atomically: directory 0700, file 0600."""
    path = credentials_path()
    directory = path.parent
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is masked by the umask and ignored for an existing directory: enforce it.
        os.chmod(directory, 0o700)
        fd, tmp_name = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=directory)
        try:
            # mkstemp creates the file 0600 already; fchmod makes that explicit and umask-proof.
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass
            raise
    except OSError as exc:
        raise CLIError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="Check the permissions of the directory, or set NNO_HOME to a writable one.",
        ) from exc
    return path


def clear() -> bool:
    """Overwrite the file with an empty payload (keeps `~/.nno/`). True if something was stored."""
    had_something = bool(load())
    if had_something or credentials_path().exists():
        save({})
    return had_something
