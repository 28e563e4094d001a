"""What the global IAM asks the Registry: a platform's owner (`ownerUserId`), whom membership
changes must not demote or remove."""

from __future__ import annotations

from urllib.parse import quote

from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import SERVICE_IDENTITY


def _unavailable() -> NNOError:
    return NNOError(503, "REGISTRY_UNAVAILABLE", "The Registry did not answer who owns this platform; "
                    "try again shortly")


async def read_owner(bindings: Bindings, platform_id: str) -> str | None:
    """The platform's owner user id; None for a platform the Registry does not know or that has no
    owner. Fails closed (503) when the Registry cannot say, so an owner is never removed by accident."""
    registry = bindings.get("registry")
    if registry is None:
        return None
    try:
        resp = await registry.request("GET", f"/{quote(platform_id, safe='')}", headers=SERVICE_IDENTITY.to_headers())
    except UpstreamError as exc:
        raise _unavailable() from exc
    if resp.status == 404:
        return None
    if not resp.ok:
        raise _unavailable()
    data = resp.json()
    owner = data.get("ownerUserId") if isinstance(data, dict) else None
    return owner if isinstance(owner, str) and owner else None
