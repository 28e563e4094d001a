"""What the IAM routers need, whether they run in the global IAM or in a per-platform auth app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

from nno.iam.mailer import Mailer
from nno.kernel.config import Settings
from nno.kernel.db import Database

SESSION_TTL_MS = 7 * 24 * 3600 * 1000
SESSION_UPDATE_AGE_MS = 24 * 3600 * 1000
SHORT_SESSION_TTL_MS = 24 * 3600 * 1000  # sign-in without "remember me"
MAGIC_LINK_TTL_MS = 5 * 60 * 1000
INVITATION_TTL_MS = 48 * 3600 * 1000
DEVICE_CODE_TTL_S = 1800
DEVICE_POLL_INTERVAL_S = 5
SESSION_COOKIE = "nno_session"
# `extras` key of the global IAM's platform-status reader (`async (platformId) -> status | None`).
PLATFORM_STATUS = "platform_status"
StatusReader = Callable[[str], Awaitable[str | None]]
# `extras` key of the global IAM's platform-owner reader (`async (platformId) -> ownerUserId | None`).
PLATFORM_OWNER = "platform_owner"


@dataclass
class IAMContext:
    db: Database
    settings: Settings
    mailer: Mailer
    # None for the global NNO IAM; the platform id for a per-platform auth app.
    platform_id: str | None = None
    # The global IAM sits behind the gateway and trusts its X-Nno-* headers; a per-platform auth app is
    # reached directly (no gateway), so it only believes the credentials it can check itself.
    trust_gateway_headers: bool = True
    # Public base URL under which this app's own routes are reachable (links in mails, device flow).
    public_base: str = ""
    # Domain of the session cookie (`.{platformId}.{base}` for a platform's auth Worker, so every app
    # of the platform shares it); None keeps it to this host.
    cookie_domain: str | None = None
    extras: dict[str, object] = field(default_factory=dict)

    async def platform_status(self, platform_id: str) -> str | None:
        """The platform's status (shared status cache, else the Registry); None when unknown."""
        reader = self.extras.get(PLATFORM_STATUS)
        return None if reader is None else await cast(StatusReader, reader)(platform_id)

    async def platform_owner(self, platform_id: str) -> str | None:
        """The platform's owner (the Registry's `ownerUserId`); None when it has none or is unknown."""
        reader = self.extras.get(PLATFORM_OWNER)
        return None if reader is None else await cast(StatusReader, reader)(platform_id)

    @property
    def is_nno(self) -> bool:
        return self.platform_id is None

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_base or self.settings.public_url).scheme == "https"
