"""ACTIVATE_FEATURE / DEACTIVATE_FEATURE and ACTIVATE_STACK / DEACTIVATE_STACK.

Lazy model (provisioning-stacks.md §2): a feature gets its Worker (bound to its stack's shared
resources), a DNS host and its Registry records; a stack gets its shared D1 / R2 / KV once, and a
Worker per member feature. Data resources are deleted on deactivation only when `deleteData`.
"""

from __future__ import annotations

from typing import Any

from nno.kernel.identity import SERVICE_IDENTITY
from nno.provisioning import naming
from nno.provisioning.errors import StepError
from nno.provisioning.steps.base import (
    Step,
    StepContext,
    StepResult,
    delete_by_type,
    ref_out,
    undo_created,
)
from nno.provisioning.steps.platform import ensure_hosts
from nno.provisioning.steps.registry_sync import (
    activate_stack,
    cleanup_registered,
    mark_dns_deleted,
    observe_registry,
    register_resources,
    undo_register_resources,
)

SHARED_KINDS = {"d1": ("db", "DB"), "r2": ("storage", "STORAGE"), "kv": ("kv", "KV")}


def _stack(sctx: StepContext) -> str:
    return str(sctx.payload.get("stackId") or naming.DEFAULT_STACK_ID)


def _features(sctx: StepContext) -> list[dict[str, Any]]:
    """The features a job deploys: the one feature, or the stack definition's members."""
    if sctx.job_type in ("ACTIVATE_FEATURE", "DEACTIVATE_FEATURE"):
        return [{"featureId": sctx.payload["featureId"], "version": sctx.payload.get("featureVersion")}]
    definition = sctx.outputs.get("fetch_stack_definition", {}).get("definition", {})
    return list(definition.get("features", []))


async def _shared_bindings(sctx: StepContext) -> dict[str, str]:
    """Binding name -> resource name of the stack's shared resources that exist."""
    stack = _stack(sctx)
    if stack == naming.DEFAULT_STACK_ID:
        return {}
    wanted = {naming.stack_shared_name(sctx.platform_id, stack, rtype, sctx.environment): binding
              for rtype, binding in SHARED_KINDS.values()}
    return {wanted[r.name]: r.name for r in await sctx.provider.list_platform_resources(sctx.platform_id)
            if r.name in wanted}


async def deploy_feature_workers(sctx: StepContext) -> StepResult:
    bindings = await _shared_bindings(sctx)
    out, changed = [], False
    for feat in _features(sctx):
        name = naming.feature_worker_name(sctx.platform_id, _stack(sctx), feat["featureId"], sctx.environment)
        ref = await sctx.provider.ensure_worker(name, kind=feat["featureId"], platform_id=sctx.platform_id,
                                                bindings=bindings)
        out.append(ref_out(sctx, ref))
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out, "bindings": bindings}, changed)


def _feature_hosts(sctx: StepContext) -> list[tuple[str, str, str]]:
    stack, pid, env = _stack(sctx), sctx.platform_id, sctx.environment
    return [
        (naming.hostname(f["featureId"], "svc", stack, pid, sctx.base_domain, env),
         naming.feature_worker_name(pid, stack, f["featureId"], env), "svc")
        for f in _features(sctx)
    ]


async def register_feature_dns(sctx: StepContext) -> StepResult:
    return await ensure_hosts(sctx, _feature_hosts(sctx))


_FEATURE_RESOURCE_STEPS = ["create_shared_resources", "deploy_feature_workers"]


async def register_feature_resources(sctx: StepContext) -> StepResult:
    feature_id = sctx.payload.get("featureId")
    result = await register_resources(sctx, resource_steps=_FEATURE_RESOURCE_STEPS, dns_steps=["register_dns"],
                                      secret_steps=[], stack_id=_stack(sctx), feature_id=feature_id)
    if sctx.job_type == "ACTIVATE_STACK":
        result.output["stack"] = await activate_stack(sctx, _stack(sctx))
    return result


async def observe_feature_registry(sctx: StepContext) -> dict[str, Any]:
    return await observe_registry(sctx, _stack(sctx))


async def cleanup_feature_registry(sctx: StepContext, observed: dict[str, Any]) -> None:
    stack = _stack(sctx) if sctx.job_type == "ACTIVATE_STACK" else None
    await cleanup_registered(sctx, observed, resource_steps=_FEATURE_RESOURCE_STEPS, dns_steps=["register_dns"],
                             stack_id=stack)


def _activation_key(feature_id: Any, environment: Any, entity_id: Any) -> list[str]:
    return [str(feature_id or ""), str(environment or ""), str(entity_id or "")]


async def observe_activations(sctx: StepContext) -> dict[str, Any]:
    """The live activations before recording this job's: rollback must leave those alone."""
    rows = await sctx.registry.list_features(sctx.platform_id)
    return {"features": [_activation_key(r.get("featureId"), r.get("environment"), r.get("entityId"))
                         for r in rows if r.get("status") != "inactive"]}


def _new_activations(sctx: StepContext, observed: dict[str, Any]) -> list[str]:
    """This job's features that were not live before it (all of them when nothing was observed)."""
    live = [list(k) for k in observed.get("features", [])]
    entity = sctx.payload.get("entityId")
    return [f["featureId"] for f in _features(sctx)
            if _activation_key(f["featureId"], sctx.environment, entity) not in live]


async def cleanup_activations(sctx: StepContext, observed: dict[str, Any]) -> None:
    await undo_record_activations(sctx, {"featureIds": _new_activations(sctx, observed)})


async def record_activations(sctx: StepContext) -> StepResult:
    recorded = []
    new = set(_new_activations(sctx, sctx.observed))
    for feat in _features(sctx):
        body = {"featureId": feat["featureId"], "version": feat.get("version") or "latest",
                "environment": sctx.environment, "stackId": _stack(sctx), "status": "active",
                "provisionJobId": sctx.job_id}
        if sctx.payload.get("entityId"):
            body["entityId"] = sctx.payload["entityId"]
        await sctx.registry.record_feature(sctx.platform_id, body)
        recorded.append(feat["featureId"])
    # Rollback deactivates only what this job activated ("featureIds"); a feature that was already
    # live stays, at the version this job recorded.
    return StepResult({"featureIds": [f for f in recorded if f in new],
                       "alreadyActive": [f for f in recorded if f not in new]}, bool(recorded))


async def undo_record_activations(sctx: StepContext, output: dict[str, Any]) -> None:
    for fid in reversed(output.get("featureIds", [])):
        params = {"environment": sctx.environment, "entityId": sctx.payload.get("entityId")}
        await sctx.registry.delete_feature(sctx.platform_id, fid, {k: v for k, v in params.items() if v})


async def record_deactivations(sctx: StepContext) -> StepResult:
    await undo_record_activations(sctx, {"featureIds": [f["featureId"] for f in _features(sctx)]})
    return StepResult({"featureIds": [f["featureId"] for f in _features(sctx)]})


def _rebuild(action: str) -> Any:
    async def run(sctx: StepContext) -> StepResult:
        """Tell the CLI Service to regenerate the shell's feature list (direct-upload page)."""
        binding = sctx.ctx.bindings.get("cli")
        features = [f["featureId"] for f in _features(sctx)]
        if binding is None:
            return StepResult({"note": "the CLI Service is not part of this installation"}, changed=False)
        resp = await binding.request(
            "POST", f"/platforms/{sctx.platform_id}/features/{action}",
            json={"features": features, "environment": sctx.environment}, headers=SERVICE_IDENTITY.to_headers(),
        )
        if resp.status == 404:
            return StepResult({"note": "the CLI Service has no rebuild route"}, changed=False)
        if not resp.ok:
            raise StepError(f"CLI Service rebuild answered {resp.status}", code="REBUILD_FAILED",
                            retryable=resp.status >= 500)
        return StepResult({"features": features})

    return run


def _worker_targets(sctx: StepContext) -> list[tuple[str, str]]:
    return [("worker", naming.feature_worker_name(sctx.platform_id, _stack(sctx), f["featureId"], sctx.environment))
            for f in _features(sctx)]


def _dns_targets(sctx: StepContext) -> list[tuple[str, str]]:
    return [("dns", host) for host, _, _ in _feature_hosts(sctx)]


ACTIVATE_FEATURE_STEPS: tuple[Step, ...] = (
    Step("deploy_feature_workers", deploy_feature_workers, undo_created, _worker_targets),
    Step("register_dns", register_feature_dns, undo_created, _dns_targets),
    Step("register_resources", register_feature_resources, undo_register_resources,
         observe=observe_feature_registry, cleanup=cleanup_feature_registry),
    Step("record_activation", record_activations, undo_record_activations,
         observe=observe_activations, cleanup=cleanup_activations),
    Step("trigger_shell_rebuild", _rebuild("activate")),
)


def _feature_inventory(sctx: StepContext, *, stack_wide: bool) -> list[dict[str, str]]:
    """What deactivation removes, by name: DNS, Workers, and data only when `deleteData`."""
    pid, env, stack = sctx.platform_id, sctx.environment, _stack(sctx)
    items = [{"type": "dns", "name": h} for h, _, _ in _feature_hosts(sctx)]
    items += [{"type": "worker", "name": naming.feature_worker_name(pid, stack, f["featureId"], env)}
              for f in _features(sctx)]
    if sctx.payload.get("deleteData"):
        kinds = {"d1": "db", "r2": "storage", "kv": "kv"}
        for f in _features(sctx):
            items += [{"type": k, "name": naming.feature_data_name(pid, stack, f["featureId"], rt, env)}
                      for k, rt in kinds.items()]
        if stack_wide:
            items += [{"type": k, "name": naming.stack_shared_name(pid, stack, rt, env)}
                      for k, rt in kinds.items()]
    return items


async def remove_feature_resources(sctx: StepContext) -> StepResult:
    items = _feature_inventory(sctx, stack_wide=sctx.job_type == "DEACTIVATE_STACK")
    for item in items:
        await delete_by_type(sctx.provider, item["type"], item["name"])
    if sctx.job_type == "DEACTIVATE_STACK":
        await sctx.registry.set_stack_status(sctx.platform_id, _stack(sctx), "deactivated")
    retired = await mark_dns_deleted(sctx, {i["name"] for i in items if i["type"] == "dns"})
    names = {i["name"] for i in items}
    removed = []
    for row in await sctx.registry.list_resources(sctx.platform_id):
        if row.get("name") in names and row.get("status") != "deleted":
            await sctx.registry.delete_resource(sctx.platform_id, str(row["id"]))
            removed.append(str(row["id"]))
    return StepResult({"deleted": items, "registryResourceIds": removed, "dnsDeleted": retired})


DEACTIVATE_FEATURE_STEPS: tuple[Step, ...] = (
    Step("remove_resources", remove_feature_resources),
    Step("record_deactivation", record_deactivations),
    Step("trigger_shell_rebuild", _rebuild("deactivate")),
)


# --- stacks -----------------------------------------------------------------------------------

async def fetch_stack_definition(sctx: StepContext) -> StepResult:
    """The StackDefinition: from the Stack Registry when a template is named and reachable, else
    the definition sent with the request."""
    definition: dict[str, Any] = {"resources": sctx.payload.get("resources") or {},
                                  "features": sctx.payload.get("features") or []}
    template = sctx.payload.get("templateId")
    binding = sctx.ctx.bindings.get("stacks")
    source = "request"
    if template and binding is not None:
        resp = await binding.request("GET", f"/{template}", headers=SERVICE_IDENTITY.to_headers())
        if resp.status == 404:
            raise StepError(f"stack template {template} not found", code="TEMPLATE_NOT_FOUND", retryable=False)
        if not resp.ok:
            raise StepError(f"Stack Registry answered {resp.status}", code="STACK_REGISTRY_ERROR",
                            retryable=resp.status >= 500)
        body = resp.json() or {}
        tpl = body.get("definition") or body.get("latestVersion", {}).get("definition") or body
        definition = {"resources": tpl.get("resources") or definition["resources"],
                      "features": tpl.get("features") or definition["features"]}
        source = "stack-registry"
    definition["features"] = [f if isinstance(f, dict) else {"featureId": str(f)} for f in definition["features"]]
    for f in definition["features"]:
        f.setdefault("featureId", f.get("id"))
    return StepResult({"definition": definition, "source": source}, changed=False)


async def create_shared_resources(sctx: StepContext) -> StepResult:
    declared = sctx.outputs["fetch_stack_definition"]["definition"]["resources"]
    out, changed = [], False
    for kind, (rtype, _) in SHARED_KINDS.items():
        if not declared.get(kind):
            continue
        name = naming.stack_shared_name(sctx.platform_id, _stack(sctx), rtype, sctx.environment)
        ensure = {"d1": sctx.provider.ensure_d1, "r2": sctx.provider.ensure_r2, "kv": sctx.provider.ensure_kv}
        ref = await ensure[kind](name)
        out.append(ref_out(sctx, ref))
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out}, changed)


def _shared_targets(sctx: StepContext) -> list[tuple[str, str]]:
    declared = sctx.outputs["fetch_stack_definition"]["definition"]["resources"]
    return [(kind, naming.stack_shared_name(sctx.platform_id, _stack(sctx), rtype, sctx.environment))
            for kind, (rtype, _) in SHARED_KINDS.items() if declared.get(kind)]


ACTIVATE_STACK_STEPS: tuple[Step, ...] = (
    Step("fetch_stack_definition", fetch_stack_definition),
    Step("create_shared_resources", create_shared_resources, undo_created, _shared_targets),
    Step("deploy_feature_workers", deploy_feature_workers, undo_created, _worker_targets),
    Step("register_dns", register_feature_dns, undo_created, _dns_targets),
    Step("register_resources", register_feature_resources, undo_register_resources,
         observe=observe_feature_registry, cleanup=cleanup_feature_registry),
    Step("record_feature_activations", record_activations, undo_record_activations,
         observe=observe_activations, cleanup=cleanup_activations),
    Step("trigger_shell_rebuild", _rebuild("activate")),
)

DEACTIVATE_STACK_STEPS: tuple[Step, ...] = (
    Step("fetch_stack_definition", fetch_stack_definition),
    Step("remove_resources", remove_feature_resources),
    Step("record_feature_deactivations", record_deactivations),
    Step("trigger_shell_rebuild", _rebuild("deactivate")),
)
