"""The OAuth 2.0 Device Authorization Grant (RFC 8628) as `nno login` runs it against IAM.

Kept apart from the command so the polling rules are testable with a fake clock: wait the
server's `interval` between polls, keep polling on `authorization_pending`, add 5 s on
`slow_down`, stop on `access_denied` and `expired_token` (or when `expires_in` has passed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nno.cli.client import APIClient
from nno.cli.errors import CLIError, ExitCode
from nno.cli.state import IAM

CLIENT_ID = "nno-cli"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
CODE_PATH = f"{IAM}/api/nno/device/code"
TOKEN_PATH = f"{IAM}/api/nno/device/token"
DEFAULT_INTERVAL_S = 5.0
SLOW_DOWN_STEP_S = 5.0


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    @classmethod
    def parse(cls, body: Any) -> DeviceCode:
        if not isinstance(body, dict) or not body.get("device_code") or not body.get("user_code"):
            raise CLIError("IAM answered the device-code request without a device code",
                           hint="Is the device flow enabled on this server? Use: nno login --token <token>")
        interval = body.get("interval")
        expires_in = body.get("expires_in")
        return cls(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body.get("verification_uri") or body.get("verification_url") or ""),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=float(expires_in) if isinstance(expires_in, int | float) else 1800.0,
            interval=float(interval) if isinstance(interval, int | float) and interval > 0 else DEFAULT_INTERVAL_S,
        )


def request_code(client: APIClient) -> DeviceCode:
    return DeviceCode.parse(client.post(CODE_PATH, json={"client_id": CLIENT_ID}, anonymous=True))


def poll_for_token(
    client: APIClient,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_slow_down: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Poll until IAM grants a token; returns the token response (`access_token`, ...)."""
    interval = code.interval
    deadline = clock() + code.expires_in
    body = {"grant_type": GRANT_TYPE, "device_code": code.device_code, "client_id": CLIENT_ID}
    while True:
        sleep(interval)
        try:
            answer = client.post(TOKEN_PATH, json=body, anonymous=True)
        except CLIError as exc:
            if exc.code == "authorization_pending":
                if clock() >= deadline:
                    raise expired_error() from None
                continue
            if exc.code == "slow_down":
                interval += SLOW_DOWN_STEP_S
                if on_slow_down is not None:
                    on_slow_down(interval)
                continue
            if exc.code == "access_denied":
                raise CLIError("login denied: the code was rejected on the activation page",
                               hint="Run: nno login to start again.", exit_code=ExitCode.AUTH) from None
            if exc.code == "expired_token":
                raise expired_error() from None
            raise
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise CLIError("IAM granted the login but sent no access token")
        return answer


def expired_error() -> CLIError:
    return CLIError("the login code expired before it was approved",
                    hint="Run: nno login again and approve the new code sooner.", exit_code=ExitCode.AUTH)
