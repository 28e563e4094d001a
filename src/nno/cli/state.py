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

    def role(self) -> str | None:
        """The role last verified for the stored login (for hints only; the server decides)."""
        if os.environ.get("NNO_API_TOKEN"):
            token = os.environ["NNO_API_TOKEN"].strip()
            return "apikey" if token.startswith("nno_") else None
        role = self.credentials().get("role")
        return str(role) if role else None

    def client(self, *, api_url: str | None = None, authenticated: bool = True) -> APIClient:
        from nno.cli.client import APIClient

        return APIClient(self.api_url(api_url), self.token() if authenticated else None, role=self.role())

    def platform_id(self, explicit: str | None) -> str:
        """The platform a command targets, as typed (an id or a slug; see `resolve_platform`)."""
        if explicit:
            return explicit
        if os.environ.get("NNO_API_TOKEN"):
            # A key in the environment speaks for its own platform, not for the stored login.
            env_platform = os.environ.get("NNO_PLATFORM")
            if env_platform:
                return env_platform
        else:
            stored = self.credentials().get("platformId")
            if stored:
                return str(stored)
        raise CLIError("no platform given",
                       hint="Pass --platform ID|SLUG, or choose one: nno platform use ID|SLUG "
                            "(see: nno platform list).",
                       exit_code=ExitCode.USAGE)

    def resolve_platform(self, client: APIClient, explicit: str | None) -> dict[str, Any]:
        """The platform record for `--platform ID|SLUG`, else the chosen one. A platform chosen
        earlier that is now cancelled or deleted is never used silently: name it to act on it."""
        env_token = os.environ.get("NNO_API_TOKEN", "").strip()
        if not explicit and env_token.startswith("nno_") and not os.environ.get("NNO_PLATFORM"):
            # A key in the environment belongs to one platform: that is the default.
            explicit_key_platform = client.get(f"{IAM}/api/nno/apikey/current").get("platformId")
            ref = str(explicit_key_platform or self.platform_id(None))
        else:
            ref = self.platform_id(explicit)
        try:
            platform = lookup_platform(client, ref)
        except CLIError as exc:
            if exc.status == 410 and not explicit:
                chosen = self.credentials().get("platformSlug") or ref
                raise CLIError(
                    f"your chosen platform {chosen} is gone ({exc.message})", request_id=exc.request_id,
                    hint="Name a platform with --platform ID|SLUG, or choose another: nno platform use ID|SLUG.",
                    exit_code=ExitCode.USAGE) from None
            raise
        if not explicit and platform.get("status") in GONE_STATUSES:
            raise CLIError(
                f"your chosen platform {platform.get('slug') or ref} is {platform.get('status')}",
                hint="Name a platform with --platform ID|SLUG, or choose another: nno platform use ID|SLUG.",
                exit_code=ExitCode.USAGE)
        return platform


    def resolved_platform_id(self, explicit: str | None, *, suspended_ok: bool = False) -> str:
        """The id of `--platform ID|SLUG` or of the chosen platform. With `suspended_ok` (Billing: a
        suspended platform pays to come back), a named platform the gateway answers 451 for is used
        as given, since its record cannot be read."""
        with self.client() as client:
            try:
                return str(self.resolve_platform(client, explicit)["id"])
            except CLIError as exc:
                if suspended_ok and exc.status == 451:
                    return self.platform_id(explicit)
                raise

    def optional_platform(self, client: APIClient, explicit: str | None) -> str | None:
        """The platform's id when one is named or chosen, else None (the server decides)."""
        try:
            return str(self.resolve_platform(client, explicit)["id"])
        except CLIError as exc:
            if exc.exit_code == ExitCode.USAGE and not explicit:
                return None
            raise


GONE_STATUSES = ("cancelled", "deleted")


def lookup_platform(client: APIClient, ref: str) -> dict[str, Any]:
    """A platform by id or slug; one message for an unknown one, whatever the command."""
    from urllib.parse import quote

    ref = ref.strip()
    request_id: str | None = None
    if ref:
        for path in (f"{PLATFORMS}/{quote(ref, safe='')}", f"{PLATFORMS}/by-slug/{quote(ref, safe='')}"):
            try:
                found = client.get(path)
            except CLIError as exc:
                if exc.status in (400, 404):
                    request_id = exc.request_id or request_id
                    continue
                raise
            if isinstance(found, dict) and found.get("id"):
                return found
    raise CLIError(f"platform {ref!r} not found", code="PLATFORM_NOT_FOUND", status=404, request_id=request_id,
                   hint="Check the id or slug: nno platform list.", exit_code=ExitCode.ERROR)


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url
