"""PROVISION_PLATFORM and DEPROVISION_PLATFORM: what a platform gets when it is onboarded (an auth
Worker with its D1 and signing secret, the console shell on Pages, DNS under *.{platformId}.{base})
and how all of it is removed again."""

from __future__ import annotations

import secrets
from typing import Any

import structlog

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
from nno.provisioning.steps.billing import ensure_billing_customer
from nno.provisioning.steps.console import console_site
from nno.provisioning.steps.owner_admin import OUTPUT_KEY as OWNER_ADMIN_KEY
from nno.provisioning.steps.owner_admin import seed_owner_admin
from nno.provisioning.steps.registry_sync import (
    activate_stack,
    cleanup_registered,
    mark_dns_deleted,
    observe_registry,
    register_resources,
    undo_register_resources,
)

AUTH_SECRET_KEY = "BETTER_AUTH_SECRET"

log = structlog.get_logger("nno.provisioning.steps")


async def mark_platform_provisioning(sctx: StepContext) -> StepResult:
    platform = await sctx.registry.get_platform(sctx.platform_id)
    status = platform.get("status")
    info = {"name": platform.get("name"), "slug": platform.get("slug")}
    if status == "pending":
        await sctx.registry.lifecycle(sctx.platform_id, "bootstrap", f"provisioning job {sctx.job_id} started")
        return StepResult({**info, "from": "pending", "to": "provisioning"})
    if status in ("provisioning", "active"):
        return StepResult({**info, "status": status}, changed=False)
    raise StepError(f"platform {sctx.platform_id} is {status}; only a pending platform can be provisioned",
                    code="INVALID_PLATFORM_STATE", retryable=False)


async def create_auth_d1(sctx: StepContext) -> StepResult:
    ref = await sctx.provider.ensure_d1(naming.auth_db_name(sctx.platform_id, sctx.environment))
    return StepResult({"resources": [ref_out(sctx, ref)]}, sctx.owned(ref))


async def deploy_auth_worker(sctx: StepContext) -> StepResult:
    pid, env = sctx.platform_id, sctx.environment
    worker = naming.auth_worker_name(pid, env)
    ref = await sctx.provider.ensure_worker(
        worker, kind="auth", platform_id=pid, bindings={"DB": naming.auth_db_name(pid, env)},
    )
    # The Worker's first administrator: the platform owner (steps/owner_admin.py).
    seeded, invited = await seed_owner_admin(sctx, worker)
    return StepResult({"resources": [ref_out(sctx, ref)], OWNER_ADMIN_KEY: seeded}, sctx.owned(ref) or invited)


async def undo_deploy_auth_worker(sctx: StepContext, output: dict[str, Any]) -> None:
    await undo_created(sctx, output)
    seeded = output.get(OWNER_ADMIN_KEY) or {}
    d1_created = any(r.get("created") for r in sctx.outputs.get("create_auth_d1", {}).get("resources", []))
    if seeded.get("created") and not d1_created:
        # The invite lives in the auth D1, which rollback removes when this job made it; a D1 that
        # was there before keeps it (IAM has no way to withdraw an invite): the owner's, harmless.
        log.warning("owner_admin_invite_kept", platformId=sctx.platform_id, jobId=sctx.job_id,
                    email=seeded.get("email"))


async def set_auth_worker_secrets(sctx: StepContext) -> StepResult:
    worker = naming.auth_worker_name(sctx.platform_id, sctx.environment)
    status = [{"worker": worker, "name": AUTH_SECRET_KEY, "status": "set"}]
    # Re-running the job must not rotate a signing secret that is in use: the cloud says whether it is
    # there. (When this step itself was interrupted, the secret found is this job's own: set it again
    # so that the output records it as created and rollback removes it.)
    if not sctx.resumed and await sctx.provider.has_secret(worker, AUTH_SECRET_KEY):
        return StepResult({"resources": [], "secrets": status}, changed=False)
    # The value goes to the cloud's secret store only; the job row keeps the secret's status.
    ref = await sctx.provider.put_secret(worker, AUTH_SECRET_KEY, secrets.token_urlsafe(48))
    out = ref_out(sctx, ref)
    out["type"], out["name"] = "secret", f"{worker}:{AUTH_SECRET_KEY}"
    return StepResult({"resources": [out], "secrets": status})


async def create_console_pages(sctx: StepContext) -> StepResult:
    pid, env = sctx.platform_id, sctx.environment
    platform = sctx.outputs.get("mark_platform_provisioning", {})
    # The console shell, with no features yet: activations rebuild it (trigger_shell_rebuild). The
    # icon is read here rather than kept in a step's output (an upload is up to 64 KB).
    icon = (await sctx.registry.get_platform(pid)).get("icon")
    site = console_site(sctx, str(platform.get("name") or pid), [], icon if isinstance(icon, str) else None)
    ref = await sctx.provider.ensure_pages(naming.portal_pages_name(pid, env), platform_id=pid, site=site)
    return StepResult({"resources": [ref_out(sctx, ref)]}, sctx.owned(ref))


def platform_hosts(sctx: StepContext) -> list[tuple[str, str, str]]:
    """(hostname, target, kind) for the default stack: the auth Worker and the console shell."""
    pid, env, base = sctx.platform_id, sctx.environment, sctx.base_domain
    return [
        (naming.hostname("auth", "svc", "default", pid, base, env), naming.auth_worker_name(pid, env), "svc"),
        (naming.hostname("console", "app", "default", pid, base, env), naming.portal_pages_name(pid, env), "app"),
    ]


async def ensure_hosts(sctx: StepContext, hosts: list[tuple[str, str, str]]) -> StepResult:
    out: list[dict[str, Any]] = []
    changed = False
    for host, target, kind in hosts:
        ref = await sctx.provider.ensure_dns(host, target=target, platform_id=sctx.platform_id)
        rec = ref_out(sctx, ref)
        rec["type"], rec["name"] = "dns", host
        rec["metadata"] = {**rec["metadata"], "target": target, "kind": kind}
        out.append(rec)
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out}, changed)


async def register_dns(sctx: StepContext) -> StepResult:
    return await ensure_hosts(sctx, platform_hosts(sctx))


_PLATFORM_RESOURCE_STEPS = ["create_auth_d1", "deploy_auth_worker", "create_console_pages"]


async def register_platform_resources(sctx: StepContext) -> StepResult:
    result = await register_resources(
        sctx,
        resource_steps=_PLATFORM_RESOURCE_STEPS,
        dns_steps=["register_dns"],
        secret_steps=["set_auth_worker_secrets"],
        stack_id="default",
    )
    # The default stack now has what it hosts (the auth Worker).
    result.output["stack"] = await activate_stack(sctx, naming.DEFAULT_STACK_ID)
    return result


async def observe_platform_registry(sctx: StepContext) -> dict[str, Any]:
    return await observe_registry(sctx, naming.DEFAULT_STACK_ID)


async def cleanup_platform_registry(sctx: StepContext, observed: dict[str, Any]) -> None:
    await cleanup_registered(sctx, observed, resource_steps=_PLATFORM_RESOURCE_STEPS, dns_steps=["register_dns"],
                             stack_id=naming.DEFAULT_STACK_ID)


async def mark_platform_active(sctx: StepContext) -> StepResult:
    platform = await sctx.registry.get_platform(sctx.platform_id)
    status = platform.get("status")
    billing = await ensure_billing_customer(sctx, platform)
    if status == "active":
        return StepResult({"status": status, **billing}, changed=False)
    if status != "provisioning":
        raise StepError(f"platform {sctx.platform_id} is {status}, not provisioning",
                        code="INVALID_PLATFORM_STATE", retryable=False)
    await sctx.registry.lifecycle(sctx.platform_id, "complete", f"provisioning job {sctx.job_id} completed")
    return StepResult({"from": "provisioning", "to": "active", **billing})


PROVISION_PLATFORM_STEPS: tuple[Step, ...] = (
    Step("mark_platform_provisioning", mark_platform_provisioning),
    Step("create_auth_d1", create_auth_d1, undo_created,
         lambda c: [("d1", naming.auth_db_name(c.platform_id, c.environment))]),
    Step("deploy_auth_worker", deploy_auth_worker, undo_deploy_auth_worker,
         lambda c: [("worker", naming.auth_worker_name(c.platform_id, c.environment))]),
    Step("set_auth_worker_secrets", set_auth_worker_secrets, undo_created),
    Step("create_console_pages", create_console_pages, undo_created,
         lambda c: [("pages", naming.portal_pages_name(c.platform_id, c.environment))]),
    Step("register_dns", register_dns, undo_created, lambda c: [("dns", h) for h, _, _ in platform_hosts(c)]),
    Step("register_resources", register_platform_resources, undo_register_resources,
         observe=observe_platform_registry, cleanup=cleanup_platform_registry),
    Step("mark_platform_active", mark_platform_active),
)


# --- DEPROVISION_PLATFORM ---------------------------------------------------------------------

# Deletion order: entry points first (DNS), then code (Workers, Pages), then data.
_DELETE_ORDER = ("dns", "worker", "pages", "kv", "r2", "d1")


def _belongs(platform_id: str, kind: str, name: str) -> bool:
    """Only what embeds this platform's id: `{pid}-...` names, `*.{pid}.{base}` hostnames."""
    if kind == "dns":
        return f".{platform_id}." in f".{name}."
    return name.startswith(platform_id + "-")


async def inventory(sctx: StepContext) -> StepResult:
    pid = sctx.platform_id
    found: dict[tuple[str, str], None] = {}
    for ref in await sctx.provider.list_platform_resources(pid):
        if ref.type in _DELETE_ORDER and _belongs(pid, ref.type, ref.name):
            found[(ref.type, ref.name)] = None
    registry_ids: list[str] = []
    for row in await sctx.registry.list_resources(pid):
        kind, name = row.get("type"), row.get("name")
        if row.get("status") == "deleted":
            continue
        registry_ids.append(str(row["id"]))
        if kind in _DELETE_ORDER and isinstance(name, str) and _belongs(pid, kind, name):
            found[(kind, name)] = None
    for rec in await sctx.registry.list_dns(pid):
        host = rec.get("hostname")
        if isinstance(host, str) and rec.get("status") != "deleted" and _belongs(pid, "dns", host):
            found[("dns", host)] = None
    items = sorted(found, key=lambda k: (_DELETE_ORDER.index(k[0]), k[1]))
    return StepResult({"resources": [{"type": t, "name": n} for t, n in items],
                       "registryResourceIds": registry_ids})


def _delete_step(kinds: tuple[str, ...]) -> Any:
    async def run(sctx: StepContext) -> StepResult:
        todo = [r for r in sctx.outputs["inventory"]["resources"] if r["type"] in kinds]
        for res in todo:
            await delete_by_type(sctx.provider, res["type"], res["name"])
        return StepResult({"deleted": todo}, bool(todo))

    return run


async def delete_repository(sctx: StepContext) -> StepResult:
    """The platform repository and its build history, through the CLI Service (which deletes a
    local repository and archives a GitHub one). Before the Pages project goes, so no build of it
    publishes again; one already gone is done."""
    binding = sctx.ctx.bindings.get("cli")
    if binding is None:
        return StepResult({"note": "the CLI Service is not part of this installation"}, changed=False)
    resp = await binding.request("DELETE", f"/platforms/{sctx.platform_id}", headers=SERVICE_IDENTITY.to_headers())
    if resp.status == 404:
        return StepResult({"note": "the platform has no repository"}, changed=False)
    if not resp.ok:
        raise StepError(f"CLI Service answered {resp.status}: {resp.body[:200]!r}", code="REPO_DELETE_FAILED",
                        retryable=resp.status >= 500)
    return StepResult(dict(resp.json() or {}))


async def retire_features_and_stacks(sctx: StepContext) -> tuple[list[dict[str, str]], list[str]]:
    """With its Workers gone, none of the platform's features or stacks runs any more: record them
    deactivated (feature DELETE, stack status `deactivated`, which the Registry allows on a gone
    platform). Only what is still live is touched, so a re-run changes nothing more."""
    pid = sctx.platform_id
    features: list[dict[str, str]] = []
    for row in await sctx.registry.list_features(pid):
        if row.get("status") == "inactive" or not row.get("featureId"):
            continue
        params = {"entityId": row.get("entityId"), "environment": row.get("environment")}
        await sctx.registry.delete_feature(pid, str(row["featureId"]), {k: v for k, v in params.items() if v})
        features.append({"featureId": str(row["featureId"]), "entityId": str(row.get("entityId") or ""),
                         "environment": str(row.get("environment") or "")})
    stacks: list[str] = []
    for row in await sctx.registry.list_stacks(pid):
        if row.get("status") != "deactivated":
            await sctx.registry.set_stack_status(pid, str(row["id"]), "deactivated")
            stacks.append(str(row["id"]))
    return features, stacks


async def mark_registry_resources_deleted(sctx: StepContext) -> StepResult:
    ids = sctx.outputs["inventory"]["registryResourceIds"]
    hosts = {r["name"] for r in sctx.outputs["inventory"]["resources"] if r["type"] == "dns"}
    retired = await mark_dns_deleted(sctx, hosts)
    for rid in ids:
        await sctx.registry.delete_resource(sctx.platform_id, rid)
    features, stacks = await retire_features_and_stacks(sctx)
    return StepResult({"deleted": ids, "dnsDeleted": retired, "featuresDeactivated": features,
                       "stacksDeactivated": stacks}, bool(ids or retired or features or stacks))


async def mark_platform_deleted(sctx: StepContext) -> StepResult:
    status = (await sctx.registry.get_platform(sctx.platform_id)).get("status")
    if status == "deleted":
        return StepResult({"status": status}, changed=False)
    if status in ("pending_cancellation", "cancelled"):
        await sctx.registry.lifecycle(sctx.platform_id, "delete", f"deprovisioned by job {sctx.job_id}")
        return StepResult({"from": status, "to": "deleted"})
    # The lifecycle has no way to `deleted` from here; the resources are gone, the status stays.
    return StepResult({"status": status, "note": f"platform left {status}: no delete transition from it"},
                      changed=False)


DEPROVISION_PLATFORM_STEPS: tuple[Step, ...] = (
    Step("inventory", inventory),
    Step("delete_dns", _delete_step(("dns",))),
    Step("delete_workers", _delete_step(("worker",))),
    Step("delete_repository", delete_repository),
    Step("delete_pages", _delete_step(("pages",))),
    Step("delete_data", _delete_step(("kv", "r2", "d1"))),
    Step("mark_registry_resources_deleted", mark_registry_resources_deleted),
    Step("mark_platform_deleted", mark_platform_deleted),
)
