"""What every command needs: which server, which credential, which platform (stdlib only).

Precedence for the server address: the command's own flag, the global `--api-url`, `NNO_API_URL`,
the address stored at login, then the default. For the credential: `NNO_API_TOKEN` (CI), then
the stored login.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nno.cli import credentials
from nno.cli.errors import CLIError, ExitCode

if TYPE_CHECKING:
    from nno.cli.client import APIClient

DEFAULT_API_URL = "http://127.0.0.1:8787"

# Gateway paths the CLI uses (DECISIONS 1: the gateway strips the prefix; IAM keeps /api/nno/*).
IAM = "/api/v1/iam"
PLATFORMS = "/api/v1/platforms"
ONBOARDING = "/api/v1/onboarding"
PROVISIONING = "/api/v1/provisioning"


@dataclass
class CLIState:
    api_url_flag: str | None = None
    _credentials: dict[str, Any] | None = field(default=None, repr=False)

    def credentials(self) -> dict[str, Any]:
        if self._credentials is None:
            self._credentials = credentials.load()
        return self._credentials

    def api_url(self, override: str | None = None) -> str:
        for candidate in (override, self.api_url_flag, os.environ.get("NNO_API_URL"),
                          self.credentials().get("apiUrl")):
            if candidate:
                return normalize_url(str(candidate))
        return DEFAULT_API_URL

    def token(self) -> str | None:
        env = os.environ.get("NNO_API_TOKEN")
        if env:
            return env.strip()
        creds = self.credentials()
        token = creds.get("token")
        if not token:
            return None
        expires = creds.get("expiresAt")
        if isinstance(expires, int | float) and expires < time.time() * 1000:
            raise CLIError(
                "your login has expired",
                hint="Run: nno login (or set NNO_API_TOKEN for CI).",
                exit_code=ExitCode.AUTH,
            )
        return str(token)

    def client(self, *, api_url: str | None = None, authenticated: bool = True) -> APIClient:
        from nno.cli.client import APIClient

        return APIClient(self.api_url(api_url), self.token() if authenticated else None)

    def platform_id(self, explicit: str | None) -> str:
        if explicit:
            return explicit
        stored = self.credentials().get("platformId")
        if stored and not os.environ.get("NNO_API_TOKEN"):
            return str(stored)
        raise CLIError("no platform given", hint="Pass --platform <platformId> (see: nno platform list).",
                       exit_code=ExitCode.USAGE)


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url
