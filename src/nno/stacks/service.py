"""Stack Registry logic behind the HTTP surface (no HTTP here): templates, versions, the seed.

Who may do what (DECISIONS 14, provisioning-stacks.md §7.1): anyone signed in browses (platform
admins pick templates; Provisioning fetches versions with the service key); only NNO operators (and
the service key) create, change, publish and deprecate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError
from nno.kernel.identity import Identity
from nno.kernel.ids import new_id
from nno.kernel.service import ServiceContext
from nno.sdk.stack import (
    AvailableFeature,
    StackDefinition,
    available_features,
    check_features,
    greatest,
    is_semver,
    parse_definition,
    semver_key,
)
from nno.stacks.catalogue import BUILTIN, BuiltinTemplate
from nno.stacks.models import StackTemplate, StackVersion
from nno.stacks.schemas import TemplateCreate, TemplateUpdate, VersionPublish

log = structlog.get_logger("nno.stacks")

AvailableFeatures = Callable[[], Mapping[str, AvailableFeature]]
# ctx.extras key of the function listing the installed feature packages (tests put their own there).
INSTALLED_FEATURES_KEY = "stacks.installed_features"
LATEST = "latest"
RESERVED_NAMES = frozenset({"default"})


def require_reader(ident: Identity) -> None:
    if ident.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")


def require_operator(ident: Identity, what: str) -> None:
    require_reader(ident)
    if not ident.is_privileged:
        raise NNOError(403, "FORBIDDEN", f"Only NNO operators may {what}")


def _publisher(ident: Identity) -> str:
    if ident.user_id:
        return f"user:{ident.user_id}"
    return ident.auth_type


def template_out(row: StackTemplate) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "display_name": row.display_name, "description": row.description,
            "icon": row.icon, "domain": row.domain, "latest_version": row.latest_version, "status": row.status,
            "created_at": row.created_at, "updated_at": row.updated_at}


def version_out(row: StackVersion, name: str) -> dict[str, Any]:
    return {"id": row.id, "template_id": row.template_id, "name": name, "version": row.version,
            "definition": row.definition, "status": row.status, "changelog": row.changelog,
            "published_by": row.published_by, "created_at": row.created_at, "deprecated_at": row.deprecated_at}


def _insert_ignoring_conflicts(is_sqlite: bool, model: Any, values: dict[str, Any], keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING: several processes may seed the same catalogue at once."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)


class StackRegistry:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.db = ctx.db

    def installed_features(self) -> Mapping[str, AvailableFeature]:
        finder: AvailableFeatures = self.ctx.extras.get(INSTALLED_FEATURES_KEY, available_features)
        return finder()

    # --- templates ----------------------------------------------------------------------------

    async def list_templates(self, ident: Identity, *, include_deprecated: bool, domain: str | None,
                             limit: int, offset: int) -> dict[str, Any]:
        require_reader(ident)
        where = [] if include_deprecated else [StackTemplate.status == "active"]
        if domain is not None:
            where.append(StackTemplate.domain == domain)
        async with self.db.session() as s:
            total = int(await s.scalar(select(func.count()).select_from(StackTemplate).where(*where)) or 0)
            rows = (await s.execute(select(StackTemplate).where(*where).order_by(StackTemplate.name)
                                    .limit(limit).offset(offset))).scalars().all()
        return {"data": [template_out(r) for r in rows], "total": total}

    async def create_template(self, ident: Identity, body: TemplateCreate) -> dict[str, Any]:
        require_operator(ident, "create stack templates")
        if body.name in RESERVED_NAMES:
            raise NNOError(400, "RESERVED_NAME", f"{body.name!r} is reserved for the platform's default stack",
                           {"field": "name"})
        now = now_ms()
        row = StackTemplate(id=new_id(), name=body.name, display_name=body.displayName, description=body.description,
                            icon=body.icon, domain=body.domain, latest_version=None, status="active", builtin=False,
                            created_at=now, updated_at=now)
        try:
            async with self.db.session() as s:
                s.add(row)
        except IntegrityError as exc:
            raise NNOError(409, "TEMPLATE_EXISTS", f"A stack template named {body.name!r} exists",
                           {"name": body.name}) from exc
        log.info("stack_template_created", name=body.name, by=_publisher(ident))
        return {"id": row.id}

    async def _template(self, s: AsyncSession, name: str, *, lock: bool = False) -> StackTemplate:
        if lock:
            # Take the row's write lock first (both backends), so latest_version is computed by one
            # writer at a time.
            await s.execute(update(StackTemplate).where(StackTemplate.name == name)
                            .values(updated_at=StackTemplate.updated_at))
        row = (await s.execute(select(StackTemplate).where(StackTemplate.name == name)
                               .execution_options(populate_existing=True))).scalar_one_or_none()
        if row is None:
            raise NNOError(404, "NOT_FOUND", f"Stack template {name!r} not found", {"name": name})
        return row

    async def _latest(self, s: AsyncSession, template: StackTemplate) -> StackVersion | None:
        if template.latest_version is None:
            return None
        return (await s.execute(select(StackVersion).where(
            StackVersion.template_id == template.id, StackVersion.version == template.latest_version))
        ).scalar_one_or_none()

    async def get_template(self, ident: Identity, name: str) -> dict[str, Any]:
        require_reader(ident)
        async with self.db.session() as s:
            row = await self._template(s, name)
            latest = await self._latest(s, row)
            return {"template": template_out(row), "latestVersion": version_out(latest, row.name) if latest else None}

    async def update_template(self, ident: Identity, name: str, body: TemplateUpdate) -> dict[str, Any]:
        require_operator(ident, "change stack templates")
        changes = body.model_dump(exclude_unset=True)
        for field in ("displayName", "description", "status"):
            if field in changes and changes[field] is None:
                raise NNOError(400, "VALIDATION_ERROR", f"{field} cannot be null", {"field": field})
        async with self.db.session() as s:
            row = await self._template(s, name, lock=True)
            before = template_out(row)
            for field, column in (("displayName", "display_name"), ("description", "description"),
                                  ("icon", "icon"), ("domain", "domain"), ("status", "status")):
                if field in changes:
                    setattr(row, column, changes[field])
            if template_out(row) != before:
                row.updated_at = now_ms()
                log.info("stack_template_updated", name=name, fields=sorted(changes), by=_publisher(ident))
            return template_out(row)

    # --- versions -----------------------------------------------------------------------------

    def validate_definition(self, name: str, version: str, definition: StackDefinition) -> StackDefinition:
        if not definition.features:
            raise NNOError(400, "VALIDATION_ERROR", "A template version has at least one feature",
                           {"field": "definition.features"})
        if not is_semver(version):
            raise NNOError(400, "VALIDATION_ERROR", f"{version!r} is not a semantic version (e.g. 1.2.0)",
                           {"field": "version"})
        for field, want in (("name", name), ("version", version)):
            given = getattr(definition, field)
            if given is not None and given != want:
                raise NNOError(400, "DEFINITION_MISMATCH", f"definition.{field} is {given!r}, but this is {want!r}",
                               {"field": f"definition.{field}"})
        check = check_features(definition, self.installed_features())
        if not check.ok:
            raise NNOError(400, "INVALID_DEFINITION", "The stack definition does not fit the installed features",
                           {"problems": [p.as_dict() for p in check.problems]})
        return definition.model_copy(update={"name": name, "version": version})

    async def publish(self, ident: Identity, name: str, body: VersionPublish) -> dict[str, Any]:
        require_operator(ident, "publish stack versions")
        async with self.db.session() as s:
            await self._template(s, name)  # 404 before the definition is judged
        definition = self.validate_definition(name, body.version, body.definition)
        now = now_ms()
        try:
            async with self.db.session() as s:
                template = await self._template(s, name, lock=True)
                if template.status != "active":
                    raise NNOError(409, "TEMPLATE_DEPRECATED", f"Stack template {name!r} is deprecated",
                                   {"name": name})
                row = StackVersion(id=new_id(), template_id=template.id, version=body.version,
                                   definition=definition.model_dump(mode="json"), status="active",
                                   changelog=body.changelog, published_by=_publisher(ident), created_at=now,
                                   deprecated_at=None)
                s.add(row)
                await s.flush()
                await self._recompute_latest(s, template, now)
                out = version_out(row, name)
        except IntegrityError as exc:
            raise NNOError(409, "VERSION_EXISTS", f"{name} {body.version} is already published; versions are "
                           "immutable", {"name": name, "version": body.version}) from exc
        log.info("stack_version_published", name=name, version=body.version, by=_publisher(ident))
        return out

    async def _recompute_latest(self, s: AsyncSession, template: StackTemplate, now: int) -> None:
        active = (await s.execute(select(StackVersion.version).where(
            StackVersion.template_id == template.id, StackVersion.status == "active"))).scalars().all()
        latest = greatest(active)
        if latest != template.latest_version:
            template.latest_version = latest
            template.updated_at = now

    async def list_versions(self, ident: Identity, name: str, *, include_deprecated: bool) -> dict[str, Any]:
        require_reader(ident)
        async with self.db.session() as s:
            template = await self._template(s, name)
            where = [StackVersion.template_id == template.id]
            if not include_deprecated:
                where.append(StackVersion.status == "active")
            rows = list((await s.execute(select(StackVersion).where(*where))).scalars().all())
        rows.sort(key=lambda r: semver_key(r.version), reverse=True)
        return {"data": [version_out(r, name) for r in rows], "total": len(rows)}

    async def get_version(self, ident: Identity, name: str, version: str) -> dict[str, Any]:
        require_reader(ident)
        async with self.db.session() as s:
            template = await self._template(s, name)
            if version == LATEST:
                row = await self._latest(s, template)
            else:
                row = (await s.execute(select(StackVersion).where(
                    StackVersion.template_id == template.id, StackVersion.version == version))).scalar_one_or_none()
            if row is None:
                raise NNOError(404, "NOT_FOUND", f"{name} has no version {version!r}",
                               {"name": name, "version": version})
            return version_out(row, name)

    async def deprecate_version(self, ident: Identity, name: str, version: str) -> dict[str, Any]:
        require_operator(ident, "deprecate stack versions")
        now = now_ms()
        async with self.db.session() as s:
            template = await self._template(s, name, lock=True)
            row = (await s.execute(select(StackVersion).where(
                StackVersion.template_id == template.id, StackVersion.version == version))).scalar_one_or_none()
            if row is None:
                raise NNOError(404, "NOT_FOUND", f"{name} has no version {version!r}",
                               {"name": name, "version": version})
            if row.status != "deprecated":
                row.status = "deprecated"
                row.deprecated_at = now
                await s.flush()
                await self._recompute_latest(s, template, now)
                log.info("stack_version_deprecated", name=name, version=version, by=_publisher(ident))
            return version_out(row, name)

    # --- the built-in catalogue -------------------------------------------------------------

    async def seed(self, catalogue: tuple[BuiltinTemplate, ...] = BUILTIN) -> None:
        """Add the built-in templates and versions that are missing; change nothing that exists."""
        for builtin in catalogue:
            await self._seed_one(builtin)

    async def _seed_one(self, builtin: BuiltinTemplate) -> None:
        now = now_ms()
        async with self.db.session() as s:
            await s.execute(_insert_ignoring_conflicts(self.db.is_sqlite, StackTemplate, {
                "id": new_id(), "name": builtin.name, "display_name": builtin.display_name,
                "description": builtin.description, "icon": builtin.icon, "domain": builtin.domain,
                "latest_version": None, "status": "active", "builtin": True, "created_at": now, "updated_at": now,
            }, ["name"]))
            template = await self._template(s, builtin.name, lock=True)
            for item in builtin.versions:
                try:
                    definition = parse_definition(item.definition).model_copy(
                        update={"name": builtin.name, "version": item.version})
                except ValidationError:
                    log.exception("stack_builtin_invalid", name=builtin.name, version=item.version)
                    raise
                await s.execute(_insert_ignoring_conflicts(self.db.is_sqlite, StackVersion, {
                    "id": new_id(), "template_id": template.id, "version": item.version,
                    "definition": definition.model_dump(mode="json"), "status": "active",
                    "changelog": item.changelog, "published_by": "nno", "created_at": now, "deprecated_at": None,
                }, ["template_id", "version"]))
            await self._recompute_latest(s, template, now)
