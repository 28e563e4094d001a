"""ACTIVATE_STACK and DEACTIVATE_STACK (provisioning-stacks.md §6-7, §12).

Activation: the StackDefinition (a Stack Registry version, Path A, or one sent with the request,
Path B; `nno.provisioning.stacks`), the shared D1 / R2 / KV once (`{pid}-{stackId}-db|storage|kv`),
each member's Worker bound to the shared resources it asks for, with its table and key prefixes,
its migrations and on_activate hook, DNS, its permission keys, then the Registry records: resources,
DNS, feature activations, and the template version the stack runs.

Deactivation removes what the Registry says the stack has: every member's hooks and permissions,
its Workers and DNS, and the shared data only with `deleteData`.
"""

from __future__ import annotations

from typing import Any

from nno.provisioning import naming
from nno.provisioning.errors import StepError
from nno.provisioning.stacks import StackRefused, resolve_stack
from nno.provisioning.steps.base import Step, StepContext, StepResult, delete_by_type, ref_out, undo_created
from nno.provisioning.steps.feature import (
    SHARED_KINDS,
    _rebuild,
    _stack,
    _worker_targets,
    deploy_feature_workers,
    record_activations,
    record_deactivations,
    register_feature_dns,
    register_feature_permissions,
    register_feature_resources,
    run_deactivate_hooks,
    run_feature_migrations,
    undo_record_activations,
    undo_register_feature_permissions,
    unregister_feature_permissions,
)
from nno.provisioning.steps.feature import _dns_targets as _feature_dns_targets
from nno.provisioning.steps.registry_sync import mark_dns_deleted, undo_register_resources


async def fetch_stack_definition(sctx: StepContext) -> StepResult:
    """The definition to deploy, checked against the installed features (S01-S07)."""
    try:
        resolved = await resolve_stack(sctx.ctx, sctx.payload, submitting=False)
    except StackRefused as exc:
        raise StepError(exc.message, code=exc.code, retryable=exc.retryable) from exc
    return StepResult(resolved.output(), changed=False)


def _declared(sctx: StepContext) -> dict[str, Any]:
    resources: dict[str, Any] = sctx.outputs["fetch_stack_definition"]["definition"]["resources"]
    return resources


async def create_shared_resources(sctx: StepContext) -> StepResult:
    declared = _declared(sctx)
    ensure = {"d1": sctx.provider.ensure_d1, "r2": sctx.provider.ensure_r2, "kv": sctx.provider.ensure_kv}
    out, changed = [], False
    for kind, (rtype, _) in SHARED_KINDS.items():
        if not declared.get(kind):
            continue
        ref = await ensure[kind](naming.stack_shared_name(sctx.platform_id, _stack(sctx), rtype, sctx.environment))
        out.append(ref_out(sctx, ref))
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out}, changed)


def _shared_targets(sctx: StepContext) -> list[tuple[str, str]]:
    declared = _declared(sctx)
    return [(kind, naming.stack_shared_name(sctx.platform_id, _stack(sctx), rtype, sctx.environment))
            for kind, (rtype, _) in SHARED_KINDS.items() if declared.get(kind)]


async def record_stack_version(sctx: StepContext) -> StepResult:
    """The Registry's stack row names the template and version it now runs (Path A)."""
    fetched = sctx.outputs["fetch_stack_definition"]
    if fetched.get("source") != "stack-registry":
        return StepResult({"note": "a platform-local definition: no template version"}, changed=False)
    stack = (await sctx.registry.call("GET", f"/{sctx.platform_id}/stacks/{_stack(sctx)}")).json()
    previous = {"templateId": stack.get("templateId"), "templateVersion": stack.get("templateVersion")}
    wanted = {"templateId": fetched["templateId"], "templateVersion": fetched["templateVersion"]}
    if previous == wanted:
        return StepResult({"previous": previous, "recorded": wanted}, changed=False)
    await sctx.registry.call("PATCH", f"/{sctx.platform_id}/stacks/{_stack(sctx)}", json=wanted)
    return StepResult({"previous": previous, "recorded": wanted})


async def undo_record_stack_version(sctx: StepContext, output: dict[str, Any]) -> None:
    previous = output.get("previous")
    if previous and output.get("recorded") and previous != output["recorded"]:
        body = {k: v for k, v in previous.items() if v is not None}
        if body:
            await sctx.registry.call("PATCH", f"/{sctx.platform_id}/stacks/{_stack(sctx)}", json=body)


ACTIVATE_STACK_STEPS: tuple[Step, ...] = (
    Step("fetch_stack_definition", fetch_stack_definition),
    Step("create_shared_resources", create_shared_resources, undo_created, _shared_targets),
    Step("deploy_feature_workers", deploy_feature_workers, undo_created, _worker_targets),
    Step("run_feature_migrations", run_feature_migrations),
    Step("register_dns", register_feature_dns, undo_created, _feature_dns_targets),
    Step("register_permissions", register_feature_permissions, undo_register_feature_permissions),
    Step("register_resources", register_feature_resources, undo_register_resources),
    Step("record_feature_activations", record_activations, undo_record_activations),
    Step("record_stack_version", record_stack_version, undo_record_stack_version),
    Step("trigger_shell_rebuild", _rebuild("activate")),
)


# --- deactivation ------------------------------------------------------------------------------

async def read_stack_members(sctx: StepContext) -> StepResult:
    """What the stack runs, as the Registry recorded it: its live feature activations. (Named like
    activation's first step, so the feature steps read their members from the same place.)"""
    stack, env = _stack(sctx), sctx.environment
    members = [{"featureId": str(f["featureId"]), "version": f.get("version")}
               for f in await sctx.registry.list_features(sctx.platform_id)
               if f.get("stackId") == stack and f.get("environment", env) == env and f.get("status") != "inactive"]
    known = {m["featureId"] for m in members}
    # A job that failed after its Workers but before recording them still left Workers to remove.
    for feat in sctx.payload.get("features") or []:
        if isinstance(feat, dict) and feat.get("featureId") and feat["featureId"] not in known:
            members.append({"featureId": str(feat["featureId"]), "version": feat.get("version")})
    return StepResult({"definition": {"resources": {}, "features": members}}, changed=False)


async def remove_stack_resources(sctx: StepContext) -> StepResult:
    """Everything the Registry records for the stack in this environment: Workers (with their
    secrets) and DNS always; the shared and per-feature data only with `deleteData`."""
    stack, env, pid = _stack(sctx), sctx.environment, sctx.platform_id
    delete_data = bool(sctx.payload.get("deleteData"))
    rows = [r for r in await sctx.registry.list_resources(pid)
            if r.get("stackId") == stack and r.get("environment", env) == env and r.get("status") != "deleted"]
    hosts = {str(d["hostname"]) for d in await sctx.registry.list_dns(pid)
             if d.get("stackId") == stack and d.get("environment", env) == env and d.get("status") != "deleted"}
    hosts |= {name for _, name in _feature_dns_targets(sctx)}
    workers = {str(r["name"]) for r in rows if r.get("type") == "worker"} | {name for _, name in _worker_targets(sctx)}
    removed: list[dict[str, str]] = [{"type": "dns", "name": h} for h in sorted(hosts)]
    removed += [{"type": "worker", "name": w} for w in sorted(workers)]
    if delete_data:
        removed += [{"type": str(r["type"]), "name": str(r["name"])} for r in rows if r.get("type") in SHARED_KINDS]
    for item in removed:
        await delete_by_type(sctx.provider, item["type"], item["name"])
    await sctx.registry.set_stack_status(pid, stack, "deactivated")
    retired = await mark_dns_deleted(sctx, hosts)
    names = {i["name"] for i in removed}
    gone = []
    for row in rows:
        if row.get("name") in names:
            await sctx.registry.delete_resource(pid, str(row["id"]))
            gone.append(str(row["id"]))
    return StepResult({"deleted": removed, "registryResourceIds": gone, "dnsDeleted": retired,
                       "dataKept": not delete_data})


DEACTIVATE_STACK_STEPS: tuple[Step, ...] = (
    Step("fetch_stack_definition", read_stack_members),
    Step("run_deactivate_hooks", run_deactivate_hooks),
    Step("unregister_permissions", unregister_feature_permissions),
    Step("remove_resources", remove_stack_resources),
    Step("record_feature_deactivations", record_deactivations),
    Step("trigger_shell_rebuild", _rebuild("deactivate")),
)
