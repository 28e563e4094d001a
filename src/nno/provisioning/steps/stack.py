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
    _auth_call,
    _features,
    _lifecycle_call,
    _rebuild,
    _shared_bindings,
    _stack,
    _worker_targets,
    cleanup_feature_registry,
    deploy_feature_workers,
    feature_prefixes,
    observe_feature_registry,
    record_activations,
    record_deactivations,
    register_feature_dns,
    register_feature_permissions,
    register_feature_resources,
    run_deactivate_hooks,
    undo_record_activations,
    undo_register_feature_permissions,
    unregister_feature_permissions,
)
from nno.provisioning.steps.feature import _dns_targets as _feature_dns_targets
from nno.provisioning.steps.registry_sync import mark_dns_deleted, undo_register_resources
from nno.sdk.definition import CONFIG_SECRET
from nno.sdk.env import FeatureConfig


async def _current_members(sctx: StepContext) -> dict[str, str]:
    """feature id -> version of what the stack runs now, as the Registry recorded it."""
    stack, env = _stack(sctx), sctx.environment
    rows = await sctx.registry.list_features(sctx.platform_id)
    return {str(f["featureId"]): str(f.get("version") or "") for f in rows
            if f.get("stackId") == stack and f.get("environment", env) == env and f.get("status") != "inactive"}


async def fetch_stack_definition(sctx: StepContext) -> StepResult:
    """The definition to deploy, checked against the installed features (S01-S07), and how it
    differs from what the stack runs now: an activation reconciles the stack to the definition, so
    an upgrade is an activation of a stack that already has members."""
    try:
        resolved = await resolve_stack(sctx.ctx, sctx.payload, submitting=False)
    except StackRefused as exc:
        raise StepError(exc.message, code=exc.code, retryable=exc.retryable) from exc
    current = await _current_members(sctx)
    target = {m["featureId"]: m["version"] for m in resolved.members()}
    out = resolved.output()
    out["current"] = current
    out["added"] = [f for f in target if f not in current]
    out["upgraded"] = [f for f in target if f in current and current[f] != target[f]]
    # Only a template manages its stack's membership: a platform-local stack may have features
    # activated into it one by one, which re-activating its definition leaves alone.
    out["removed"] = [f for f in current if f not in target] if resolved.source == "stack-registry" else []
    return StepResult(out, changed=False)


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


def _diff(sctx: StepContext) -> dict[str, Any]:
    fetched: dict[str, Any] = sctx.outputs["fetch_stack_definition"]
    return fetched


async def snapshot_stack_data(sctx: StepContext) -> StepResult:
    """Before an upgrade touches data: a snapshot of the shared D1, restored if the job rolls back
    (SQL migrations only go forward). Nothing to keep on a first activation."""
    if not _diff(sctx).get("current") or not _declared(sctx).get("d1"):
        return StepResult({"note": "nothing to snapshot"}, changed=False)
    snapshot = getattr(sctx.provider, "snapshot_d1", None)
    if snapshot is None:
        return StepResult({"note": f"the {sctx.provider.name} cloud offers no D1 snapshot: a rolled back "
                                   "upgrade keeps the migrations it ran"}, changed=False)
    name = naming.stack_shared_name(sctx.platform_id, _stack(sctx), "db", sctx.environment)
    return StepResult({"d1": name, "snapshot": await snapshot(name)})


async def undo_snapshot_stack_data(sctx: StepContext, output: dict[str, Any]) -> None:
    if output.get("snapshot"):
        await sctx.provider.restore_d1(output["d1"], output["snapshot"])  # type: ignore[attr-defined]


async def run_stack_migrations(sctx: StepContext) -> StepResult:
    """Inside each member's Worker: `activate` (migrations, on_activate) for a new member, `upgrade`
    (migrations, on_upgrade with the previous version) for one whose version changed."""
    diff = _diff(sctx)
    done: dict[str, Any] = {}
    for feat in _features(sctx):
        fid = feat["featureId"]
        if fid in diff.get("added", [fid]):
            body: dict[str, Any] = {"event": "activate"}
        elif fid in diff.get("upgraded", []):
            body = {"event": "upgrade", "previousVersion": diff["current"][fid]}
        else:
            continue
        done[fid] = await _lifecycle_call(sctx, fid, body, missing_ok=False)
    return StepResult({"lifecycle": done}, bool(done))


async def record_members(sctx: StepContext) -> StepResult:
    """The Registry's feature activations: each member at its installed version. Rollback puts back
    the version a member had, and removes the activation of one that is new."""
    await record_activations(sctx)
    diff = _diff(sctx)
    return StepResult({"featureIds": [f["featureId"] for f in _features(sctx)],
                       "previous": {f: v for f, v in diff.get("current", {}).items()}})


async def undo_record_members(sctx: StepContext, output: dict[str, Any]) -> None:
    previous: dict[str, str] = output.get("previous", {})
    new = [f for f in output.get("featureIds", []) if f not in previous]
    await undo_record_activations(sctx, {"featureIds": new})
    for fid in output.get("featureIds", []):
        if fid in previous:
            await sctx.registry.record_feature(sctx.platform_id, _activation(sctx, fid, previous[fid]))


def _activation(sctx: StepContext, feature_id: str, version: str) -> dict[str, Any]:
    body = {"featureId": feature_id, "version": version or "latest", "environment": sctx.environment,
            "stackId": _stack(sctx), "status": "active", "provisionJobId": sctx.job_id}
    if sctx.payload.get("entityId"):
        body["entityId"] = sctx.payload["entityId"]
    return body


async def remove_dropped_members(sctx: StepContext) -> StepResult:
    """Members the new version no longer has: their on_deactivate hook, permissions, Worker, DNS and
    Registry records go (their tables in the shared D1 stay, like a deactivation without deleteData).
    Last of the steps that change things, so a failure before it removes nothing."""
    diff = _diff(sctx)
    pid, stack, env = sctx.platform_id, _stack(sctx), sctx.environment
    removed = []
    for fid in diff.get("removed", []):
        worker = naming.feature_worker_name(pid, stack, fid, env)
        host = naming.hostname(fid, "svc", stack, pid, sctx.base_domain, env)
        await _lifecycle_call(sctx, fid, {"event": "deactivate", "deleteData": False}, missing_ok=True)
        await _auth_call(sctx, "DELETE", f"/api/nno/feature-permissions/{fid}")
        await delete_by_type(sctx.provider, "dns", host)
        await delete_by_type(sctx.provider, "worker", worker)
        await mark_dns_deleted(sctx, {host})
        for row in await sctx.registry.list_resources(pid):
            if row.get("name") == worker and row.get("status") != "deleted":
                await sctx.registry.delete_resource(pid, str(row["id"]))
        await undo_record_activations(sctx, {"featureIds": [fid]})
        removed.append({"featureId": fid, "version": diff["current"].get(fid), "worker": worker, "host": host})
    return StepResult({"removed": removed}, bool(removed))


async def undo_remove_dropped_members(sctx: StepContext, output: dict[str, Any]) -> None:
    """Put removed members back: Worker (with the shared bindings and its configuration), DNS and
    the Registry's activation at the version it had."""
    shared = await _shared_bindings(sctx)
    for item in reversed(output.get("removed", [])):
        fid, worker = item["featureId"], item["worker"]
        await sctx.provider.ensure_worker(worker, kind=fid, platform_id=sctx.platform_id, bindings=shared)
        table_prefix, key_prefix = feature_prefixes(fid, bool(shared))
        config = FeatureConfig(featureId=fid, version=item.get("version") or "", platformId=sctx.platform_id,
                               stackId=_stack(sctx), environment=sctx.environment, tablePrefix=table_prefix,
                               keyPrefix=key_prefix,
                               authWorker=naming.auth_worker_name(sctx.platform_id, sctx.environment))
        await sctx.provider.put_secret(worker, CONFIG_SECRET, config.encode())
        await sctx.provider.ensure_dns(item["host"], target=worker, platform_id=sctx.platform_id)
        await sctx.registry.register_dns(sctx.platform_id, {
            "hostname": item["host"], "type": "svc", "stackId": _stack(sctx), "environment": sctx.environment,
            "target": worker, "status": "active"})
        await sctx.registry.record_feature(sctx.platform_id, _activation(sctx, fid, item.get("version") or ""))


async def drop_snapshot(sctx: StepContext) -> StepResult:
    taken = sctx.outputs.get("snapshot_stack_data", {})
    if not taken.get("snapshot"):
        return StepResult({}, changed=False)
    await sctx.provider.drop_d1_snapshot(taken["d1"], taken["snapshot"])  # type: ignore[attr-defined]
    return StepResult({"dropped": taken["snapshot"]})


ACTIVATE_STACK_STEPS: tuple[Step, ...] = (
    Step("fetch_stack_definition", fetch_stack_definition),
    Step("snapshot_stack_data", snapshot_stack_data, undo_snapshot_stack_data),
    Step("create_shared_resources", create_shared_resources, undo_created, _shared_targets),
    Step("deploy_feature_workers", deploy_feature_workers, undo_created, _worker_targets),
    Step("run_feature_migrations", run_stack_migrations),
    Step("register_dns", register_feature_dns, undo_created, _feature_dns_targets),
    Step("register_permissions", register_feature_permissions, undo_register_feature_permissions),
    Step("register_resources", register_feature_resources, undo_register_resources,
         observe=observe_feature_registry, cleanup=cleanup_feature_registry),
    Step("record_feature_activations", record_members, undo_record_members),
    Step("record_stack_version", record_stack_version, undo_record_stack_version),
    Step("remove_dropped_features", remove_dropped_members, undo_remove_dropped_members),
    Step("trigger_shell_rebuild", _rebuild("activate")),
    Step("drop_snapshot", drop_snapshot),
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
