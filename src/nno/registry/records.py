"""What services record about a platform: resources, secret status, DNS records, feature
activations and build state (written by NNO services, readable by the platform's admins), plus the
platform's audit log and lifecycle history.

Registrations are idempotent: registering the same resource name or hostname again updates the row
and answers 200 instead of 201, so a provisioning step re-run after a crash creates nothing twice.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel import tiers
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.ids import new_id
from nno.registry import serialize
from nno.registry.access import Access
from nno.registry.gone import Write, check_write, is_gone
from nno.registry.models import (
    AuditLog,
    BuildState,
    DnsRecord,
    Entity,
    FeatureActivation,
    LifecycleEvent,
    Resource,
    Secret,
    Stack,
)
from nno.registry.naming import is_valid_resource_name
from nno.registry.schemas import (
    BuildStatePut,
    DnsRecordCreate,
    FeatureActivate,
    ResourceCreate,
    ResourceUpdate,
    SecretsPut,
)
from nno.registry.service import DEFAULT_TENANT_SLUG
from nno.registry.store import FEATURE_LIMITS, LIVE_FEATURE, RegistryBase, audit, lock_platform, page

_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Resource statuses that wind a resource down: the only resource updates a gone platform takes.
RESOURCE_WIND_DOWN = frozenset({"deleting", "deleted"})


def check_hostname(hostname: str, platform_id: str) -> None:
    labels = hostname.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise NNOError(400, "VALIDATION_ERROR", "hostname must be a lowercase DNS name", {"field": "hostname"})
    if platform_id not in labels:
        raise NNOError(400, "VALIDATION_ERROR", "hostname must contain the platform id as one of its labels",
                       {"field": "hostname"})


class RecordService(RegistryBase):
    async def _stack_exists(self, s: AsyncSession, platform_id: str, stack_id: str) -> None:
        if await s.get(Stack, (platform_id, stack_id)) is None:
            raise NNOError(404, "NOT_FOUND", "Stack not found", {"field": "stackId"})

    async def _entity(self, s: AsyncSession, platform_id: str, entity_id: str) -> Entity:
        row = await s.get(Entity, entity_id)
        if row is None or row.platform_id != platform_id or row.deleted_at is not None:
            raise NNOError(404, "NOT_FOUND", "Tenant not found", {"field": "entityId"})
        return row

    async def _resource(self, s: AsyncSession, platform_id: str, resource_id: str) -> Resource:
        row = await s.get(Resource, resource_id)
        if row is None or row.platform_id != platform_id:
            raise NNOError(404, "NOT_FOUND", "Resource not found")
        return row

    # --- resources ----------------------------------------------------------------------------

    async def register_resource(self, access: Access, platform_id: str,
                                body: ResourceCreate) -> tuple[dict[str, Any], bool]:
        await self.check_visible(access, platform_id)
        access.require_service("register resources")
        if not is_valid_resource_name(body.name) or not body.name.startswith(platform_id + "-"):
            raise NNOError(400, "INVALID_RESOURCE_NAME",
                           "A resource name is at most 63 characters of [a-z0-9-] and starts with the platform id",
                           {"field": "name"})
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.grow("register a resource"), access)
            await self._stack_exists(s, platform_id, body.stackId)
            if body.entityId is not None:
                await self._entity(s, platform_id, body.entityId)
            row = (await s.execute(select(Resource).where(
                Resource.type == body.type, Resource.name == body.name))).scalar_one_or_none()
            created = row is None
            before = None if row is None else serialize.resource(row)
            if row is None:
                row = Resource(id=new_id(), platform_id=platform_id, type=body.type, name=body.name, created_at=now)
                s.add(row)
            elif row.platform_id != platform_id:  # cannot happen for names that embed the platform id
                raise NNOError(409, "CONFLICT", "That resource name belongs to another platform", {"field": "name"})
            row.stack_id, row.entity_id = body.stackId, body.entityId
            row.cf_resource_id, row.environment, row.status = body.cfResourceId, body.environment, body.status
            row.feature_id, row.provision_job_id, row.meta = body.featureId, body.provisionJobId, body.metadata
            row.deleted_at = now if body.status == "deleted" else None
            row.updated_at = now
            out = serialize.resource(row)
            if out != before:
                audit(s, access, platform_id=platform_id, entity_id=body.entityId,
                      action="resource.register" if created else "resource.update", target_type="resource",
                      target_id=row.id, before=before, after=out, at=now)
            return out, created

    async def list_resources(self, access: Access, platform_id: str, *, stack_id: str | None,
                             entity_id: str | None, type_: str | None, include_deleted: bool,
                             limit: int | None, cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        where: list[ColumnElement[bool]] = [Resource.platform_id == platform_id]
        if stack_id is not None:
            where.append(Resource.stack_id == stack_id)
        if entity_id is not None:
            where.append(Resource.entity_id == entity_id)
        if type_ is not None:
            where.append(Resource.type == type_)
        if not include_deleted:
            where.append(Resource.deleted_at.is_(None))
        async with self.db.session() as s:
            return await page(s, Resource, where, limit=limit, cursor=cursor, serialize=serialize.resource)

    async def get_resource(self, access: Access, platform_id: str, resource_id: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            return serialize.resource(await self._resource(s, platform_id, resource_id))

    async def update_resource(self, access: Access, platform_id: str, resource_id: str,
                              body: ResourceUpdate) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        access.require_service("update resources")
        changes = body.model_dump(exclude_unset=True)
        if "status" in changes and changes["status"] is None:
            raise NNOError(400, "VALIDATION_ERROR", "status cannot be null", {"field": "status"})
        winding_down = set(changes) == {"status"} and changes["status"] in RESOURCE_WIND_DOWN
        write = Write.cleanup("mark a resource deleted") if winding_down else Write.configure("update a resource")
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, write, access)
            row = await self._resource(s, platform_id, resource_id)
            before = serialize.resource(row)
            if "cfResourceId" in changes:
                row.cf_resource_id = changes["cfResourceId"]
            if "provisionJobId" in changes:
                row.provision_job_id = changes["provisionJobId"]
            if "metadata" in changes:
                row.meta = changes["metadata"] or {}
            if "status" in changes:
                row.status = changes["status"]
                row.deleted_at = (row.deleted_at or now) if row.status == "deleted" else None
            after = serialize.resource(row)
            if after != before:
                row.updated_at = now
                after = serialize.resource(row)
                audit(s, access, platform_id=platform_id, entity_id=row.entity_id, action="resource.update",
                      target_type="resource", target_id=row.id, before=before, after=after, at=now)
            return after

    async def delete_resource(self, access: Access, platform_id: str, resource_id: str) -> dict[str, Any]:
        return await self.update_resource(access, platform_id, resource_id, ResourceUpdate(status="deleted"))

    # --- secrets (status only) ----------------------------------------------------------------

    async def put_secrets(self, access: Access, platform_id: str, resource_id: str,
                          body: SecretsPut) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        access.require_service("record secret status")
        names = [x.name for x in body.secrets]
        if len(set(names)) != len(names):
            raise NNOError(400, "VALIDATION_ERROR", "Each secret name may appear once", {"field": "secrets"})
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.configure("record secret status"), access)
            resource = await self._resource(s, platform_id, resource_id)
            existing = {x.name: x for x in (await s.execute(
                select(Secret).where(Secret.resource_id == resource.id))).scalars().all()}
            for item in body.secrets:
                row = existing.get(item.name)
                before = None if row is None else serialize.secret(row)
                if row is None:
                    row = Secret(id=new_id(), platform_id=platform_id, resource_id=resource.id, name=item.name,
                                 created_at=now)
                    s.add(row)
                    existing[item.name] = row
                if item.status == "set" and (before is None or before["status"] != "set"
                                             or before["fingerprint"] != item.fingerprint):
                    if before is not None and before["lastSetAt"] is not None:
                        row.last_rotated_at = now
                    row.last_set_at = now
                row.status, row.fingerprint, row.set_by = item.status, item.fingerprint, access.actor_id
                row.updated_at = now if before is None or before["status"] != item.status or \
                    before["fingerprint"] != item.fingerprint else row.updated_at
                after = serialize.secret(row)
                if before is None or {k: v for k, v in after.items() if k != "setBy"} != \
                        {k: v for k, v in before.items() if k != "setBy"}:
                    audit(s, access, platform_id=platform_id, entity_id=resource.entity_id,
                          action="secret.status_change", target_type="secret", target_id=row.id,
                          before=None if before is None else {"status": before["status"]},
                          after={"name": row.name, "status": row.status, "resourceId": resource.id}, at=now)
            return {"data": [serialize.secret(x) for x in sorted(existing.values(), key=lambda x: x.name)]}

    async def list_secrets(self, access: Access, platform_id: str, resource_id: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            resource = await self._resource(s, platform_id, resource_id)
            rows = (await s.execute(select(Secret).where(Secret.resource_id == resource.id)
                                    .order_by(Secret.name))).scalars().all()
            return {"data": [serialize.secret(x) for x in rows]}

    # --- DNS records --------------------------------------------------------------------------

    async def register_dns(self, access: Access, platform_id: str,
                           body: DnsRecordCreate) -> tuple[dict[str, Any], bool]:
        await self.check_visible(access, platform_id)
        access.require_service("register DNS records")
        hostname = body.hostname.lower().rstrip(".")
        check_hostname(hostname, platform_id)
        # Re-registering a record as `deleted` retires it (the Registry has no DNS delete; deprovisioning
        # and job rollbacks do this): cleanup, as long as the record exists.
        register = Write.grow("register a DNS record")
        write = Write.cleanup("retire a DNS record") if body.status == "deleted" else register
        now = now_ms()
        async with self.db.session() as s:
            p = await lock_platform(s, platform_id, write, access)
            await self._stack_exists(s, platform_id, body.stackId)
            if body.resourceId is not None:
                await self._resource(s, platform_id, body.resourceId)
            row = (await s.execute(select(DnsRecord).where(DnsRecord.hostname == hostname))).scalar_one_or_none()
            if row is not None and row.platform_id != platform_id:
                raise NNOError(409, "HOSTNAME_TAKEN", "That hostname belongs to another platform",
                               {"field": "hostname"})
            if row is None:  # retiring what is not there would add it
                check_write(platform_id, p.status, register, privileged=access.privileged)
            created = row is None
            before = None if row is None else serialize.dns_record(row)
            if row is None:
                row = DnsRecord(id=new_id(), platform_id=platform_id, hostname=hostname, created_at=now)
                s.add(row)
            if is_gone(p.status):
                # Only the retirement: the record keeps what it pointed at, for the audit trail.
                row.status = "deleted"
            else:
                row.stack_id, row.resource_id, row.type = body.stackId, body.resourceId, body.type
                row.environment, row.target, row.status = body.environment, body.target, body.status
                row.cf_custom_hostname_id = body.cfCustomHostnameId
            row.updated_at = now
            out = serialize.dns_record(row)
            if before is None or {k: v for k, v in out.items() if k != "updatedAt"} != \
                    {k: v for k, v in before.items() if k != "updatedAt"}:
                audit(s, access, platform_id=platform_id, action="dns.create" if created else "dns.update",
                      target_type="dns_record", target_id=hostname, before=before, after=out, at=now)
            return out, created

    async def list_dns(self, access: Access, platform_id: str, *, stack_id: str | None, limit: int | None,
                       cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        where: list[ColumnElement[bool]] = [DnsRecord.platform_id == platform_id]
        if stack_id is not None:
            where.append(DnsRecord.stack_id == stack_id)
        async with self.db.session() as s:
            return await page(s, DnsRecord, where, limit=limit, cursor=cursor, serialize=serialize.dns_record)

    # --- feature activations ------------------------------------------------------------------

    async def _default_entity_id(self, s: AsyncSession, platform_id: str) -> str:
        entity_id = (await s.execute(select(Entity.id).where(
            Entity.platform_id == platform_id, Entity.slug == DEFAULT_TENANT_SLUG,
            Entity.deleted_at.is_(None)))).scalar_one_or_none()
        if entity_id is None:
            raise NNOError(400, "VALIDATION_ERROR", "entityId is required: the platform has no default tenant",
                           {"field": "entityId"})
        return entity_id

    async def activate_feature(self, access: Access, platform_id: str,
                               body: FeatureActivate) -> tuple[dict[str, Any], bool]:
        await self.check_visible(access, platform_id)
        access.require_service("record feature activations")
        now = now_ms()
        async with self.db.session() as s:
            p = await lock_platform(s, platform_id, Write.grow("record a feature activation"), access)
            entity_id = body.entityId or await self._default_entity_id(s, platform_id)
            await self._entity(s, platform_id, entity_id)
            if body.stackId is not None:
                await self._stack_exists(s, platform_id, body.stackId)
            row = (await s.execute(select(FeatureActivation).where(
                FeatureActivation.entity_id == entity_id, FeatureActivation.feature_id == body.featureId,
                FeatureActivation.environment == body.environment))).scalar_one_or_none()
            limit = FEATURE_LIMITS[p.tier]
            if limit is not None:
                live = set((await s.execute(select(FeatureActivation.feature_id).distinct().where(
                    FeatureActivation.platform_id == platform_id,
                    FeatureActivation.status.in_(LIVE_FEATURE)))).scalars().all())
                if body.featureId not in live and len(live) >= limit:
                    raise tiers.limit_error(p.tier, "features", len(live))
            created = row is None
            before = None if row is None else serialize.feature(row)
            if row is None:
                row = FeatureActivation(id=new_id(), platform_id=platform_id, entity_id=entity_id,
                                        feature_id=body.featureId, environment=body.environment, created_at=now)
                s.add(row)
            row.stack_id, row.version, row.config = body.stackId, body.version, body.config
            row.status, row.provision_job_id = body.status, body.provisionJobId
            row.activated_by = row.activated_by if before is not None and before["status"] in LIVE_FEATURE \
                else access.actor_id
            if body.status == "active" and row.activated_at is None:
                row.activated_at = now
            row.deactivated_at = None
            row.updated_at = now
            out = serialize.feature(row)
            if before is None or {k: v for k, v in out.items() if k != "updatedAt"} != \
                    {k: v for k, v in before.items() if k != "updatedAt"}:
                audit(s, access, platform_id=platform_id, entity_id=entity_id, action="feature.activate",
                      target_type="feature", target_id=body.featureId, before=before, after=out, at=now)
            return out, created

    async def deactivate_feature(self, access: Access, platform_id: str, feature_id: str, *,
                                 entity_id: str | None, environment: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        access.require_service("record feature deactivations")
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.cleanup("record a feature deactivation"), access)
            entity_id = entity_id or await self._default_entity_id(s, platform_id)
            row = (await s.execute(select(FeatureActivation).where(
                FeatureActivation.platform_id == platform_id, FeatureActivation.entity_id == entity_id,
                FeatureActivation.feature_id == feature_id,
                FeatureActivation.environment == environment))).scalar_one_or_none()
            if row is None or row.status == "inactive":
                raise NNOError(404, "NOT_FOUND", "That feature is not active here")
            before = serialize.feature(row)
            row.status, row.deactivated_at, row.updated_at = "inactive", now, now
            out = serialize.feature(row)
            audit(s, access, platform_id=platform_id, entity_id=entity_id, action="feature.deactivate",
                  target_type="feature", target_id=feature_id, before=before, after=out, at=now)
            return out

    async def list_features(self, access: Access, platform_id: str, *, entity_id: str | None,
                            environment: str | None, include_inactive: bool, limit: int | None,
                            cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        where: list[ColumnElement[bool]] = [FeatureActivation.platform_id == platform_id]
        if entity_id is not None:
            where.append(FeatureActivation.entity_id == entity_id)
        if environment is not None:
            where.append(FeatureActivation.environment == environment)
        if not include_inactive:
            where.append(FeatureActivation.status != "inactive")
        async with self.db.session() as s:
            return await page(s, FeatureActivation, where, limit=limit, cursor=cursor, serialize=serialize.feature)

    # --- build state --------------------------------------------------------------------------

    async def put_build_state(self, access: Access, platform_id: str, body: BuildStatePut) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        access.require_service("record build state")
        changes = body.model_dump(exclude_unset=True)
        now = now_ms()
        async with self.db.session() as s:
            await lock_platform(s, platform_id, Write.configure("record build state"), access)
            row = await s.get(BuildState, (platform_id, body.environment))
            before = None if row is None else serialize.build_state(row)
            if row is None:
                row = BuildState(platform_id=platform_id, environment=body.environment)
                s.add(row)
            for field, column in (("repoFullName", "repo_full_name"), ("defaultBranch", "default_branch"),
                                  ("pagesProjectName", "pages_project_name"), ("lastCommitSha", "last_commit_sha"),
                                  ("lastBuildId", "last_build_id"), ("lastBuildStatus", "last_build_status"),
                                  ("lastBuildAt", "last_build_at")):
                if field in changes:
                    setattr(row, column, changes[field])
            row.updated_at = now
            out = serialize.build_state(row)
            audit(s, access, platform_id=platform_id, action="build_state.update", target_type="build_state",
                  target_id=body.environment, before=before, after=out, at=now)
            return out

    async def get_build_state(self, access: Access, platform_id: str) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            rows = (await s.execute(select(BuildState).where(BuildState.platform_id == platform_id)
                                    .order_by(BuildState.environment))).scalars().all()
            return {"data": [serialize.build_state(r) for r in rows]}

    # --- history ------------------------------------------------------------------------------

    async def list_audit(self, access: Access, platform_id: str, *, limit: int | None, cursor: str | None,
                         action: str | None = None, actor_type: str | None = None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        where: list[ColumnElement[bool]] = [AuditLog.platform_id == platform_id]
        if action:
            # Actions are lower-case; LIKE is case-sensitive on PostgreSQL and not on SQLite.
            where.append(AuditLog.action.contains(action.lower(), autoescape=True))
        if actor_type:
            where.append(AuditLog.actor_type == actor_type)
        async with self.db.session() as s:
            return await page(s, AuditLog, where, limit=limit, cursor=cursor,
                              serialize=serialize.audit_row, newest_first=True)

    async def list_lifecycle_events(self, access: Access, platform_id: str, *, limit: int | None,
                                    cursor: str | None) -> dict[str, Any]:
        await self.check_visible(access, platform_id)
        async with self.db.session() as s:
            return await page(s, LifecycleEvent, [LifecycleEvent.platform_id == platform_id], limit=limit,
                              cursor=cursor, serialize=serialize.lifecycle_event, newest_first=True)
