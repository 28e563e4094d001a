"""Who may read and change which platform's billing.

- Services and operators: everything (and the operator-only test clock and payment method).
- Platform-admins (the owner, IAM's platform-admins, the gateway's `platform-admin` claim) change
  the subscription; any member of the platform (and the platform's own API keys) reads it.
- Anyone else gets 404: another platform's billing is not even confirmed to exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from nno.billing.clients import IamClient, RegistryClient, RegistryUnavailable
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, Identity
from nno.kernel.service import ServiceContext

NOT_FOUND = ("NOT_FOUND", "No billing for this platform")


@dataclass(frozen=True)
class Grant:
    platform_id: str
    can_change: bool


class BillingAccess:
    def __init__(self, ctx: ServiceContext, identity: Identity) -> None:
        self.ctx = ctx
        self.identity = identity

    @property
    def actor(self) -> tuple[str, str | None]:
        ident = self.identity
        if ident.is_service:
            return "service", None
        if ident.auth_type == "apikey":
            return "apikey", ident.key_id
        return ("operator" if ident.is_operator else "user"), ident.user_id

    def require_authenticated(self) -> None:
        if self.identity.auth_type == "anonymous":
            raise NNOError(401, "UNAUTHORIZED", "Authentication required")

    def require_privileged(self, what: str) -> None:
        self.require_authenticated()
        if not self.identity.is_privileged:
            raise NNOError(403, "FORBIDDEN", f"Only NNO operators and services may {what}")

    def require_service(self, what: str) -> None:
        self.require_authenticated()
        if not self.identity.is_service:
            raise NNOError(403, "FORBIDDEN", f"Only NNO services may {what}")

    def platform_id(self, requested: str | None) -> str:
        """The query's platformId wins; otherwise the caller's own platform (X-Nno-Platform-Id)."""
        pid = requested or self.identity.platform_id
        if not pid:
            raise NNOError(400, "VALIDATION_ERROR", "platformId is required", {"field": "platformId"})
        return pid

    async def grant(self, platform_id: str, *, change: bool) -> Grant:
        """What this caller may do on `platform_id`; 404 if it may not see it, 403 if read-only."""
        self.require_authenticated()
        ident = self.identity
        if ident.is_privileged:
            return Grant(platform_id, True)
        can_read = can_change = False
        if ident.auth_type == "apikey":
            can_read = ident.platform_id == platform_id
        elif ident.auth_type == "session" and ident.user_id:
            if ident.role == ROLE_PLATFORM_ADMIN and ident.platform_id == platform_id:
                can_read = can_change = True
            else:
                role = (await IamClient(self.ctx).memberships(ident.user_id)).get(platform_id)
                if role is not None:
                    can_read, can_change = True, role == ROLE_PLATFORM_ADMIN
                if not can_change:
                    try:
                        platform = await RegistryClient(self.ctx).platform(platform_id)
                    except RegistryUnavailable:
                        platform = None
                    if platform is not None and platform.get("ownerUserId") == ident.user_id:
                        can_read = can_change = True
        if not can_read:
            raise NNOError(404, *NOT_FOUND)
        if change and not can_change:
            raise NNOError(403, "FORBIDDEN", "Only the platform's admins may change its billing")
        return Grant(platform_id, can_change)
