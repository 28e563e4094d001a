"""Recording in the Registry what a job created: resources, DNS records and secret status.

Each write looks for an existing row first (by type and name, or by hostname), so re-running the
step registers nothing twice. Rollback deletes only the rows this job added.
"""

from __future__ import annotations

from typing import Any

from nno.provisioning.steps.base import StepContext, StepResult


def _resources_from(sctx: StepContext, step_names: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for step in step_names:
        for res in sctx.outputs.get(step, {}).get("resources", []):
            if res["type"] not in ("dns", "secret"):
                found.append(res)
    return found


async def register_resources(
    sctx: StepContext,
    *,
    resource_steps: list[str],
    dns_steps: list[str],
    secret_steps: list[str],
    stack_id: str,
    feature_id: str | None = None,
) -> StepResult:
    reg = sctx.registry
    pid = sctx.platform_id
    existing = {(r.get("type"), r.get("name")): r for r in await reg.list_resources(pid)}
    ids: dict[str, str] = {}
    added: list[str] = []
    for res in _resources_from(sctx, resource_steps):
        row = existing.get((res["type"], res["name"]))
        if row is None or row.get("status") == "deleted":
            body: dict[str, Any] = {
                "type": res["type"],
                "name": res["name"],
                "cfResourceId": res["providerId"][:500],
                "stackId": stack_id,
                "environment": sctx.environment,
                "status": "active",
                "provisionJobId": sctx.job_id,
            }
            if sctx.payload.get("entityId"):
                body["entityId"] = sctx.payload["entityId"]
            if feature_id:
                body["featureId"] = feature_id
            row = await reg.register_resource(pid, body)
            added.append(str(row["id"]))
        ids[res["name"]] = str(row["id"])

    dns_existing = {d.get("hostname"): d for d in await reg.list_dns(pid)}
    dns_added: list[str] = []
    for step in dns_steps:
        for rec in sctx.outputs.get(step, {}).get("resources", []):
            host = rec["name"]
            if host in dns_existing and dns_existing[host].get("status") != "deleted":
                continue
            target = rec["metadata"].get("target", "")
            body = {"hostname": host, "type": rec["metadata"].get("kind", "svc"), "stackId": stack_id,
                    "environment": sctx.environment, "target": target, "status": "active"}
            if target in ids:
                body["resourceId"] = ids[target]
            await reg.register_dns(pid, body)
            dns_added.append(host)

    secrets_set: list[dict[str, Any]] = []
    for step in secret_steps:
        for sec in sctx.outputs.get(step, {}).get("secrets", []):
            worker_id = ids.get(sec["worker"])
            if worker_id is None:
                continue
            known = await reg.list_secrets(pid, worker_id)
            if any(x.get("name") == sec["name"] and x.get("status") == "set" for x in known):
                continue
            # Status only, never the value (registry.md §5.7).
            await reg.put_secrets(pid, worker_id, {"secrets": [{"name": sec["name"], "status": "set"}]})
            secrets_set.append({"resourceId": worker_id, "name": sec["name"]})
    changed = bool(added or dns_added or secrets_set)
    return StepResult({"resourceIds": ids, "added": added, "dnsAdded": dns_added, "secrets": secrets_set},
                      changed)


async def observe_registry(sctx: StepContext, stack_id: str) -> dict[str, Any]:
    """What the Registry holds before a registering step first runs: live resource rows, live DNS
    records and the stack's status (see `Step.observe`)."""
    reg, pid = sctx.registry, sctx.platform_id
    return {
        "resources": [[r.get("type"), r.get("name")] for r in await reg.list_resources(pid)
                      if r.get("status") != "deleted"],
        "dns": [d.get("hostname") for d in await reg.list_dns(pid) if d.get("status") != "deleted"],
        "stackStatus": next((s.get("status") for s in await reg.list_stacks(pid) if s.get("id") == stack_id), None),
    }


async def activate_stack(sctx: StepContext, stack_id: str) -> dict[str, Any]:
    """Mark the stack active; returns what rollback needs to put its status back."""
    await sctx.registry.set_stack_status(sctx.platform_id, stack_id, "active")
    return {"id": stack_id, "before": sctx.observed.get("stackStatus")}


async def _restore_stack(sctx: StepContext, stack_id: str, before: Any) -> None:
    if not before:
        return
    for row in await sctx.registry.list_stacks(sctx.platform_id):
        if row.get("id") == stack_id and row.get("status") != before:
            await sctx.registry.set_stack_status(sctx.platform_id, stack_id, str(before))


async def undo_register_resources(sctx: StepContext, output: dict[str, Any]) -> None:
    await mark_dns_deleted(sctx, set(output.get("dnsAdded", [])))
    for rid in reversed(output.get("added", [])):
        await sctx.registry.delete_resource(sctx.platform_id, rid)
    stack = output.get("stack") or {}
    if stack.get("id"):
        await _restore_stack(sctx, str(stack["id"]), stack.get("before"))


async def cleanup_registered(sctx: StepContext, observed: dict[str, Any], *, resource_steps: list[str],
                             dns_steps: list[str], stack_id: str | None) -> None:
    """Undo a registering step that failed midway (its output was never recorded): retire the rows
    of this job's resources and hosts that were not live when the step first started."""
    reg, pid = sctx.registry, sctx.platform_id
    hosts = {rec["name"] for step in dns_steps for rec in sctx.outputs.get(step, {}).get("resources", [])}
    await mark_dns_deleted(sctx, hosts - set(observed.get("dns", [])))
    mine = {(r["type"], r["name"]) for r in _resources_from(sctx, resource_steps)}
    before = {(t, n) for t, n in observed.get("resources", [])}
    for row in await reg.list_resources(pid):
        key = (row.get("type"), row.get("name"))
        if row.get("status") != "deleted" and key in mine and key not in before:
            await reg.delete_resource(pid, str(row["id"]))
    if stack_id is not None:
        await _restore_stack(sctx, stack_id, observed.get("stackStatus"))


async def mark_dns_deleted(sctx: StepContext, hostnames: set[str]) -> list[str]:
    """The Registry has no DNS delete; re-registering a record with status `deleted` retires it."""
    done = []
    for row in await sctx.registry.list_dns(sctx.platform_id):
        host = row.get("hostname")
        if host not in hostnames or row.get("status") == "deleted":
            continue
        body = {k: row[k] for k in ("hostname", "type", "stackId", "environment", "target") if row.get(k)}
        await sctx.registry.register_dns(sctx.platform_id, {**body, "status": "deleted"})
        done.append(str(host))
    return done
