"""Which StackDefinition a stack job deploys: a Stack Registry template version (Path A), a
definition sent with the request (Path B, a platform-local stack), or the older inline form
(`resources` + `features`). Resolved and checked (rules S01-S07) when the job is submitted, so a bad
request is a 4xx and no job; checked again when it runs (the installed packages may have changed).
The Stack Registry is reached through its binding with the typed client below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from nno.kernel.bindings import UpstreamError
from nno.kernel.errors import NNOError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.kernel.service import ServiceContext
from nno.sdk.stack import AvailableFeature, StackDefinition, available_features, check_features, parse_definition

LATEST = "latest"


class StackRefused(Exception):
    """Why a stack job cannot run: `status`, `code`, `message`, `details`; `retryable` for a step."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None,
                 *, retryable: bool = False) -> None:
        self.status, self.code, self.message, self.details = status, code, message, details
        self.retryable = retryable
        super().__init__(message)

    def as_nno_error(self) -> NNOError:
        return NNOError(self.status, self.code, self.message, self.details)


class StackRegistryClient:
    """Provisioning's calls to the Stack Registry (as a service)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _get(self, path: str) -> dict[str, Any] | None:
        binding = self.ctx.bindings.get("stacks")
        if binding is None:
            raise StackRefused(503, "STACK_REGISTRY_UNAVAILABLE",
                               "The Stack Registry is not part of this installation")
        try:
            resp = await binding.request("GET", path, headers=SERVICE_IDENTITY.to_headers())
        except UpstreamError as exc:
            raise StackRefused(503, "STACK_REGISTRY_UNAVAILABLE", f"Stack Registry unreachable: {exc}",
                               retryable=True) from exc
        if resp.status == 404:
            return None
        if not resp.ok:
            raise StackRefused(502, "STACK_REGISTRY_ERROR", f"Stack Registry GET {path} answered {resp.status}",
                               retryable=resp.status >= 500)
        body: dict[str, Any] = resp.json()
        return body

    async def template(self, name: str) -> dict[str, Any]:
        body = await self._get(f"/{name}")
        if body is None or not body.get("template"):
            raise StackRefused(404, "TEMPLATE_NOT_FOUND", f"No stack template {name!r}", {"templateId": name})
        return body

    async def version(self, name: str, version: str) -> dict[str, Any]:
        """A version record (`definition`, `version`, `status`); `latest` is the latest active one."""
        body = await self._get(f"/{name}/versions/{version}")
        if body is None:
            await self.template(name)  # 404 TEMPLATE_NOT_FOUND when the template itself is unknown
            what = "no active version" if version == LATEST else f"no version {version!r}"
            raise StackRefused(404, "VERSION_NOT_FOUND", f"Stack template {name!r} has {what}",
                               {"templateId": name, "version": version})
        return body


@dataclass(frozen=True)
class Resolved:
    definition: StackDefinition
    installed: dict[str, AvailableFeature]
    source: str  # "stack-registry" | "request"
    template_id: str | None = None
    template_version: str | None = None

    def members(self) -> list[dict[str, Any]]:
        """What the feature steps deploy, one entry per member: its id, the installed version (what
        the Registry records), the range it was picked by, its prefixes and the shared kinds it binds."""
        return [{"featureId": f.id, "version": self.installed[f.id].version, "range": f.version,
                 "tablePrefix": f.table_prefix, "keyPrefix": f.key_prefix,
                 "bindings": f.bound_kinds(self.definition.resources)} for f in self.definition.features]

    def output(self) -> dict[str, Any]:
        return {"definition": {"resources": self.definition.resources.model_dump(), "features": self.members()},
                "stackDefinition": self.definition.model_dump(mode="json"), "source": self.source,
                "templateId": self.template_id, "templateVersion": self.template_version}


def _inline(payload: dict[str, Any]) -> dict[str, Any]:
    """The older inline form as a definition: `features: [{featureId, version}]`, `resources`."""
    features = [{"id": f.get("featureId"), "version": f.get("version") or "*"}
                for f in payload.get("features") or [] if isinstance(f, dict)]
    return {"resources": payload.get("resources") or {}, "features": features}


async def resolve_stack(ctx: ServiceContext, payload: dict[str, Any], *, submitting: bool) -> Resolved:
    """The definition a stack job deploys, checked against the installed features. `submitting`:
    also refuse deprecated templates and versions (a job already accepted keeps what it pinned)."""
    source, template_id, template_version = "request", payload.get("templateId"), None
    if payload.get("definition") is not None:
        raw: Any = payload["definition"]
        template_id = None
    elif template_id:
        client = StackRegistryClient(ctx)
        wanted = str(payload.get("templateVersion") or LATEST)
        if submitting:
            template = (await client.template(template_id))["template"]
            if template.get("status") != "active":
                raise StackRefused(409, "TEMPLATE_DEPRECATED", f"Stack template {template_id!r} is deprecated",
                                   {"templateId": template_id})
        record = await client.version(template_id, wanted)
        if submitting and record.get("status") != "active":
            raise StackRefused(409, "VERSION_DEPRECATED",
                               f"{template_id} {record.get('version')} is deprecated; pick another version",
                               {"templateId": template_id, "version": record.get("version")})
        raw, source, template_version = record.get("definition"), "stack-registry", str(record.get("version"))
    else:
        raw = _inline(payload)
    try:
        definition = parse_definition(raw)
    except ValidationError as exc:
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                    for e in exc.errors()]
        raise StackRefused(400, "INVALID_DEFINITION", "The stack definition is not valid",
                           {"problems": problems}) from exc
    installed = available_features()
    check = check_features(definition, installed)
    if not check.ok:
        raise StackRefused(400 if source == "request" else 409, "INVALID_DEFINITION",
                           "The stack definition does not fit the installed features",
                           {"problems": [p.as_dict() for p in check.problems]})
    return Resolved(definition, installed, source, template_id, template_version)
