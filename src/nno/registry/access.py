"""Who may see and change which platform.

- Services and operators (`Identity.is_privileged`) see every platform.
- An API key sees only the platform it belongs to, and only while its maker may: the maker owns it,
  or IAM forwarded the maker's current role there as `platform-admin` (a key of a plain member sees
  no more than that member's session does). Its permissions are applied per route
  (`nno.kernel.scopes`, see `registry.scopes`).
- A signed-in user sees the platforms they own (`owner_user_id`) or administer: the gateway's
  `X-Nno-Role: platform-admin` for the one platform in `X-Nno-Platform-Id`, or IAM's
  platform-members list (asked at most once per request, only when needed).

A platform the caller may not see is answered with 404, never 403, so its existence does not leak.
"""

from __future__ import annotations

import structlog

from nno.kernel.bindings import Bindings, UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import ROLE_PLATFORM_ADMIN, SERVICE_IDENTITY, Identity

log = structlog.get_logger("nno.registry.access")


class Access:
    def __init__(self, identity: Identity, bindings: Bindings | None) -> None:
        self.identity = identity
        self._bindings = bindings
        self._admin_of: frozenset[str] | None = None

    @property
    def privileged(self) -> bool:
        return self.identity.is_privileged

    @property
    def actor_type(self) -> str:
        ident = self.identity
        if ident.auth_type in ("service", "dev"):
            return "service"
        if ident.auth_type == "apikey":
            return "apikey"
        if ident.is_operator:
            return "operator"
        return "user"

    @property
    def actor_id(self) -> str | None:
        ident = self.identity
        if ident.auth_type == "apikey":
            return ident.key_id or ident.user_id
        return ident.user_id

    def require_authenticated(self) -> None:
        if self.identity.auth_type == "anonymous":
            raise NNOError(401, "UNAUTHORIZED", "Authentication required")

    def require_privileged(self, what: str) -> None:
        self.require_authenticated()
        if not self.privileged:
            raise NNOError(403, "FORBIDDEN", f"Only NNO operators and services may {what}")

    def require_service(self, what: str) -> None:
        self.require_authenticated()
        if not self.identity.is_service:
            raise NNOError(403, "FORBIDDEN", f"Only NNO services may {what}")

    async def admin_platform_ids(self) -> frozenset[str]:
        """Platforms IAM says this user administers (plus the gateway's own claim)."""
        if self._admin_of is not None:
            return self._admin_of
        ident = self.identity
        ids: set[str] = set()
        if ident.role == ROLE_PLATFORM_ADMIN and ident.platform_id:
            ids.add(ident.platform_id)
        if ident.auth_type == "session" and ident.user_id:
            ids.update(await self._iam_admin_platforms(ident.user_id))
        self._admin_of = frozenset(ids)
        return self._admin_of

    async def _iam_admin_platforms(self, user_id: str) -> set[str]:
        iam = self._bindings.get("iam") if self._bindings is not None else None
        if iam is None:
            return set()
        try:
            resp = await iam.request("GET", "/api/nno/platform-members", params={"userId": user_id},
                                     headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            # Fail closed: without IAM's answer only ownership and the gateway's claim count.
            log.warning("iam_platform_members_unavailable", error=str(exc))
            return set()
        if not resp.ok:
            log.warning("iam_platform_members_failed", status=resp.status)
            return set()
        body = resp.json() or {}
        return {
            m["platformId"] for m in body.get("data", [])
            if isinstance(m, dict) and m.get("role") == ROLE_PLATFORM_ADMIN and m.get("userId") == user_id
            and isinstance(m.get("platformId"), str)
        }

    async def can_see(self, platform_id: str, owner_user_id: str | None) -> bool:
        ident = self.identity
        if self.privileged:
            return True
        if ident.auth_type == "apikey":
            return ident.platform_id == platform_id and self.key_maker_may_see(owner_user_id)
        if ident.auth_type != "session" or not ident.user_id:
            return False
        if owner_user_id is not None and owner_user_id == ident.user_id:
            return True
        if ident.role == ROLE_PLATFORM_ADMIN and ident.platform_id == platform_id:
            return True
        return platform_id in await self.admin_platform_ids()

    def key_maker_may_see(self, owner_user_id: str | None) -> bool:
        """For an API key on its own platform: whether its maker may see that platform now."""
        ident = self.identity
        if ident.role == ROLE_PLATFORM_ADMIN:
            return True
        return ident.user_id is not None and ident.user_id == owner_user_id

    async def is_platform_admin(self, platform_id: str, owner_user_id: str | None) -> bool:
        """The owner or a platform-admin (a person); keys are not admins for lifecycle purposes."""
        ident = self.identity
        if ident.auth_type != "session" or not ident.user_id:
            return False
        return await self.can_see(platform_id, owner_user_id)
