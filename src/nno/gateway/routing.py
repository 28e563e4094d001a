"""The routing table of the Gateway API seed: public prefix -> upstream binding (DECISIONS 1), the
public-route allowlist (DECISIONS 2), and the path checks that keep a request inside its prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str
    # What the upstream sees in front of the remainder; only onboarding keeps a prefix.
    upstream_prefix: str = ""
    description: str = ""


ROUTES: tuple[Route, ...] = (
    Route("/api/v1/iam", "iam", "", "NNO IAM service: authentication, sessions, organizations, roles, grants"),
    Route("/api/v1/platforms", "registry", "", "NNO Registry service: platforms, tenants, resources, features"),
    Route("/api/v1/billing", "billing", "", "NNO Billing service: subscriptions, metering, invoicing"),
    Route("/api/v1/provisioning", "provisioning", "", "NNO Provisioning service: resource job state machine"),
    Route("/api/v1/stacks", "stacks", "", "NNO Stack Registry service: versioned stack template catalogue"),
    Route("/api/v1/cli", "cli", "", "NNO CLI Service: platform repos and builds"),
    Route("/api/v1/onboarding", "registry", "/onboarding", "NNO Registry service: onboarding flows"),
)

# Routes served without credentials (DECISIONS 2), as (method, public path). Everything else under
# /api/* needs one of the three auth paths. /health and /openapi.json are the gateway's own.
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("POST", "/api/v1/iam/api/auth/sign-up/email"),
        ("POST", "/api/v1/iam/api/auth/sign-in/email"),
        ("POST", "/api/v1/iam/api/auth/sign-in/magic-link"),
        ("GET", "/api/v1/iam/api/auth/magic-link/verify"),
        # Better Auth answers it `null` without a session; IAM checks the presented token itself.
        ("GET", "/api/v1/iam/api/auth/get-session"),
        ("POST", "/api/v1/iam/api/nno/device/code"),
        ("POST", "/api/v1/iam/api/nno/device/token"),
        # The same two under Better Auth's device authorization plugin's paths.
        ("POST", "/api/v1/iam/api/auth/device/code"),
        ("POST", "/api/v1/iam/api/auth/device/token"),
        # IAM's device-approval page checks the browser's session cookie itself.
        ("GET", "/api/v1/iam/activate"),
        ("POST", "/api/v1/iam/activate"),
        # Password reset (Better Auth's routes): asking for a link, opening it, setting the password.
        ("POST", "/api/v1/iam/api/auth/request-password-reset"),
        ("POST", "/api/v1/iam/api/auth/forget-password"),
        ("GET", "/api/v1/iam/api/auth/reset-password"),
        ("POST", "/api/v1/iam/api/auth/reset-password"),
        # The payment provider's webhook verifies its own signature.
        ("POST", "/api/v1/billing/webhooks/stripe"),
    }
)


def is_public(method: str, path: str) -> bool:
    if method == "HEAD":
        method = "GET"
    return (method, path) in PUBLIC_ROUTES


_ROUTES_WITH_SLASH = tuple((route, route.prefix + "/") for route in ROUTES)


def match_route(path: str) -> tuple[Route, str] | None:
    """The route whose whole prefix starts `path` (at a segment boundary) and the upstream path."""
    for route, prefix_slash in _ROUTES_WITH_SLASH:
        if path.startswith(prefix_slash) or path == route.prefix:
            rest = path[len(route.prefix):]
            upstream = route.upstream_prefix + rest
            return route, upstream or "/"
    return None


# Characters kept literal when re-encoding a decoded path for the upstream (RFC 3986 pchar + "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]*")


def unsafe_path_reason(path: str, raw_path: bytes | None) -> str | None:
    """Why a request path could escape its prefix or be read differently upstream, else None.

    Refused: dot segments (`.`/`..`, literal or percent-encoded), encoded slashes or backslashes
    (`%2F`, `%5C`), backslashes, and control characters. `path` is the decoded ASGI path, `raw_path`
    the bytes as sent."""
    if not path.startswith("/"):
        return "path must start with /"
    if raw_path is not None and b"%" in raw_path:
        lowered = raw_path.lower()
        if b"%2f" in lowered or b"%5c" in lowered:
            return "encoded slashes are not allowed in paths"
    if "\\" in path:
        return "backslashes are not allowed in paths"
    if "/." in path:
        for segment in path.split("/"):
            if segment in (".", ".."):
                return "dot segments are not allowed in paths"
    if not path.isprintable():
        return "control characters are not allowed in paths"
    return None


def encode_path(path: str) -> str:
    """Percent-encode a decoded path for the upstream, keeping `/` and the other pchars literal."""
    if _PLAIN_PATH_RE.fullmatch(path):
        return path
    return quote(path, safe=_PATH_SAFE)
