"""The routing table of the Gateway API seed: public prefix -> upstream binding (DECISIONS 1)."""

from __future__ import annotations

from dataclasses import dataclass


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


def match_route(path: str) -> tuple[Route, str] | None:
    """The route whose whole prefix starts `path` (at a segment boundary) and the upstream path."""
    for route in ROUTES:
        if path == route.prefix or path.startswith(route.prefix + "/"):
            rest = path[len(route.prefix):]
            upstream = route.upstream_prefix + rest
            return route, upstream or "/"
    return None
