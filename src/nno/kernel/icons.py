"""A platform's icon: an https URL or an uploaded raster image (a base64 data URL) of at most
64 KB. One rule for every service that takes one (the Registry's platform field, the console
shell's configuration), so a value one accepts is never refused by the other."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from urllib.parse import urlsplit

MAX_ICON_BYTES = 64 * 1024
# Raster formats only from an upload: an uploaded SVG could carry script, so SVG is ours alone.
ICON_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
_DATA_URL_RE = re.compile(r"^data:(image/[a-z+.-]+);base64,([A-Za-z0-9+/=]+)$")


def icon_upload(value: str) -> tuple[str, bytes] | None:
    """(extension, bytes) of an uploaded icon (a base64 data URL of a raster image), else None."""
    match = _DATA_URL_RE.match(value)
    if not match:
        return None
    ext = ICON_TYPES.get(match.group(1))
    if ext is None:
        raise ValueError(f"an uploaded icon is one of {', '.join(sorted(ICON_TYPES))}")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the uploaded icon is not valid base64") from None
    if not data or len(data) > MAX_ICON_BYTES:
        raise ValueError(f"an uploaded icon is 1 byte to {MAX_ICON_BYTES // 1024} KB")
    return ext, data


def check_icon(value: str | None) -> str | None:
    """An icon is an https URL or an uploaded raster image (a base64 data URL); None: initials."""
    if value is None or value == "":
        return None
    if value.startswith("data:"):
        if icon_upload(value) is None:
            raise ValueError("an uploaded icon is data:image/<type>;base64,<data>")
        return value
    parts = urlsplit(value)
    if not value.startswith("https://") or not parts.hostname or parts.username or parts.password or len(value) > 2048:
        raise ValueError("an icon URL is https://host/path (at most 2048 characters)")
    if any(c in value for c in "\"<>'` \\") or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("an icon URL cannot contain spaces, quotes, backslashes or angle brackets")
    return value


def icon_summary(value: str | None) -> str | None:
    """What an audit entry keeps of an icon: the URL, or an upload's type, size and digest (the
    image itself stays out of the audit log)."""
    if value is None or not value.startswith("data:"):
        return value
    upload = icon_upload(value)
    if upload is None:
        return "data:?"
    ext, data = upload
    return f"upload:{ext}:{len(data)}B:sha256={hashlib.sha256(data).hexdigest()[:16]}"
