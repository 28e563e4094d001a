"""ACTIVATE_FEATURE / DEACTIVATE_FEATURE and ACTIVATE_STACK / DEACTIVATE_STACK.

Lazy model (provisioning-stacks.md §2): a feature gets what its installed package declares (its
D1 / R2 / KV, unless its stack shares one), its Worker bound to them with its configuration, its
migrations and on_activate hook run inside that Worker, a DNS host, its permission keys registered
with the platform's auth Worker, and its Registry records; a stack gets its shared D1 / R2 / KV
once, and a Worker per member feature. Data resources are deleted on deactivation only when
`deleteData` (the on_deactivate hook runs first, told so).
"""

from __future__ import annotations

from typing import Any

from nno.kernel.identity import SERVICE_IDENTITY
from nno.provisioning import naming
from nno.provisioning.errors import StepError
from nno.provisioning.features import LATEST, FeatureRefused, activatable, installed_feature
from nno.provisioning.iam_client import IAMClient
from nno.provisioning.providers.base import ProviderError
from nno.provisioning.steps.base import (
    Step,
    StepContext,
    StepResult,
    delete_by_type,
    ref_out,
    undo_created,
)
from nno.provisioning.steps.console import publish_console
from nno.provisioning.steps.platform import ensure_hosts
from nno.provisioning.steps.registry_sync import (
    activate_stack,
    cleanup_registered,
    mark_dns_deleted,
    observe_registry,
    register_resources,
    undo_register_resources,
)
from nno.sdk.definition import CONFIG_SECRET
from nno.sdk.discovery import InstalledFeature
from nno.sdk.env import FeatureConfig
from nno.sdk.host import lifecycle_audience
from nno.sdk.validation import validate_feature

SHARED_KINDS = {"d1": ("db", "DB"), "r2": ("storage", "STORAGE"), "kv": ("kv", "KV")}
BINDING_KINDS = {binding: kind for kind, (_, binding) in SHARED_KINDS.items()}


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


def _stack_job(sctx: StepContext) -> bool:
    return sctx.job_type in ("ACTIVATE_STACK", "DEACTIVATE_STACK")


def _installed(sctx: StepContext, feature_id: str) -> InstalledFeature:
    """The valid installed package of a feature this job deploys (checked again at run time: the
    package may have changed since the job was accepted)."""
    try:
        found = installed_feature(feature_id)
        if sctx.job_type == "ACTIVATE_FEATURE":
            found = activatable(feature_id, str(sctx.payload.get("featureVersion") or LATEST))
        elif not validate_feature(found).ok:
            raise FeatureRefused(422, "INVALID_FEATURE_PACKAGE", f"feature package {feature_id!r} is not valid")
    except FeatureRefused as exc:
        raise StepError(exc.message, code=exc.code, retryable=False) from exc
    return found


def _own_data_names(sctx: StepContext, feature_id: str) -> dict[str, str]:
    """kind -> name of the data resources a feature has of its own (those its stack does not share)."""
    return {kind: naming.feature_data_name(sctx.platform_id, _stack(sctx), feature_id, rtype, sctx.environment)
            for kind, (rtype, _) in SHARED_KINDS.items()}


async def create_feature_resources(sctx: StepContext) -> StepResult:
    """The D1 / R2 / KV the feature declares, unless its stack already shares one of that kind."""
    shared = await _shared_bindings(sctx)
    fid = str(sctx.payload["featureId"])
    definition = _installed(sctx, fid).require()
    ensure = {"d1": sctx.provider.ensure_d1, "r2": sctx.provider.ensure_r2, "kv": sctx.provider.ensure_kv}
    names = _own_data_names(sctx, fid)
    out, changed = [], False
    for kind in definition.resources.declared():
        if SHARED_KINDS[kind][1] in shared:
            continue
        ref = await ensure[kind](names[kind])
        out.append(ref_out(sctx, ref))
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out}, changed)


def _feature_resource_targets(sctx: StepContext) -> list[tuple[str, str]]:
    definition = _installed(sctx, str(sctx.payload["featureId"])).require()
    names = _own_data_names(sctx, str(sctx.payload["featureId"]))
    return [(kind, names[kind]) for kind in definition.resources.declared()]


def feature_prefixes(feature_id: str, shared: bool) -> tuple[str, str]:
    """(table prefix, key prefix): empty on resources of its own, the feature's id in a stack's."""
    return (feature_id.replace("-", "_") + "_", feature_id + "/") if shared else ("", "")


async def deploy_feature_workers(sctx: StepContext) -> StepResult:
    """Each feature's Worker with its bindings (`DB`, `STORAGE`, `KV`: the stack's shared resources,
    else its own) and its configuration (the `NNO_FEATURE_CONFIG` secret)."""
    shared = await _shared_bindings(sctx)
    own = {r["type"]: r["name"] for r in sctx.outputs.get("create_feature_resources", {}).get("resources", [])}
    out, changed, configs = [], False, {}
    for feat in _features(sctx):
        fid = feat["featureId"]
        definition = _installed(sctx, fid).require()
        if _stack_job(sctx):
            # A stack member gets the shared resources its definition entry binds (all by default).
            kinds = feat.get("bindings")
            bindings = {b: n for b, n in shared.items() if kinds is None or BINDING_KINDS[b] in kinds}
        else:
            bindings = {}
            for kind in definition.resources.declared():
                binding = SHARED_KINDS[kind][1]
                name = shared.get(binding) or own.get(kind)
                if name is not None:
                    bindings[binding] = name
        name = naming.feature_worker_name(sctx.platform_id, _stack(sctx), fid, sctx.environment)
        ref = await sctx.provider.ensure_worker(name, kind=fid, platform_id=sctx.platform_id, bindings=bindings)
        table_prefix, key_prefix = feature_prefixes(fid, any(v in shared.values() for v in bindings.values()))
        if _stack_job(sctx):  # the stack definition says where each member's data lives
            table_prefix, key_prefix = feat.get("tablePrefix", table_prefix), feat.get("keyPrefix", key_prefix)
        config = FeatureConfig(
            featureId=fid, version=definition.version, platformId=sctx.platform_id, stackId=_stack(sctx),
            environment=sctx.environment, tablePrefix=table_prefix, keyPrefix=key_prefix,
            authWorker=naming.auth_worker_name(sctx.platform_id, sctx.environment),
            config=dict(sctx.payload.get("config") or {}))
        await sctx.provider.put_secret(name, CONFIG_SECRET, config.encode())
        configs[fid] = config.model_dump()
        out.append(ref_out(sctx, ref))
        changed = changed or sctx.owned(ref)
    return StepResult({"resources": out, "bindings": shared, "configs": configs}, changed)


async def _lifecycle_call(sctx: StepContext, feature_id: str, body: dict[str, Any], *,
                          missing_ok: bool) -> dict[str, Any]:
    """POST the feature Worker's `/_nno/lifecycle` (migrations and hooks run inside the Worker)."""
    worker = naming.feature_worker_name(sctx.platform_id, _stack(sctx), feature_id, sctx.environment)
    token = await IAMClient(sctx.ctx).service_token(lifecycle_audience(sctx.platform_id))
    try:
        resp = await sctx.provider.call_worker(worker, "POST", "/_nno/lifecycle", json=body,
                                               headers={"authorization": f"Bearer {token}"})
    except ProviderError as exc:
        if missing_ok and not exc.retryable:
            return {"skipped": str(exc)}
        raise StepError(f"feature Worker {worker}: {exc}", code="FEATURE_WORKER_UNAVAILABLE",
                        retryable=exc.retryable) from exc
    data = resp.json() if resp.body else None
    if resp.ok and isinstance(data, dict):
        return data
    err = data.get("error", {}) if isinstance(data, dict) else {}
    message = err.get("message") if isinstance(err, dict) else None
    raise StepError(f"feature {feature_id} {body.get('event')} failed ({resp.status}): {message or resp.body[:200]!r}",
                    code="FEATURE_LIFECYCLE_FAILED", retryable=resp.status >= 500)


async def _recorded_versions(sctx: StepContext) -> dict[str, str]:
    """featureId -> version the Registry records as active here (same stack, environment, entity)."""
    entity = sctx.payload.get("entityId")
    return {str(r["featureId"]): str(r.get("version")) for r in await sctx.registry.list_features(sctx.platform_id)
            if r.get("status") == "active" and r.get("environment") == sctx.environment
            and (r.get("stackId") or naming.DEFAULT_STACK_ID) == _stack(sctx)
            and (entity is None or r.get("entityId") in (None, entity))}


async def run_feature_migrations(sctx: StepContext) -> StepResult:
    """Migrations, then the on_activate hook (on_upgrade when the Registry records another version
    of it here), inside each feature's Worker on its own D1."""
    recorded = await _recorded_versions(sctx)
    done = {}
    for feat in _features(sctx):
        fid = feat["featureId"]
        installed = _installed(sctx, fid).require().version
        previous = sctx.payload.get("previousVersion") or recorded.get(fid)
        body: dict[str, Any] = {"event": "activate"}
        if previous and previous not in (installed, "latest"):
            body = {"event": "upgrade", "previousVersion": previous}
        done[fid] = await _lifecycle_call(sctx, fid, body, missing_ok=False)
    return StepResult({"lifecycle": done})


async def run_deactivate_hooks(sctx: StepContext) -> StepResult:
    done = {}
    for feat in _features(sctx):
        done[feat["featureId"]] = await _lifecycle_call(
            sctx, feat["featureId"], {"event": "deactivate", "deleteData": bool(sctx.payload.get("deleteData"))},
            missing_ok=True)
    return StepResult({"lifecycle": done}, changed=any("skipped" not in v for v in done.values()))


async def _auth_call(sctx: StepContext, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
    """A call to the platform's auth Worker with a service token; None when it is not deployed."""
    worker = naming.auth_worker_name(sctx.platform_id, sctx.environment)
    token = await IAMClient(sctx.ctx).platform_token(sctx.platform_id)
    try:
        resp = await sctx.provider.call_worker(worker, method, path, json=body,
                                               headers={"authorization": f"Bearer {token}"})
    except ProviderError as exc:
        if exc.status == 404 and not exc.retryable:
            return None
        raise StepError(f"auth Worker {worker}: {exc}", code="AUTH_WORKER_UNAVAILABLE",
                        retryable=exc.retryable) from exc
    data = resp.json() if resp.body else None
    if resp.ok and isinstance(data, dict):
        return data
    raise StepError(f"auth Worker {worker} {method} {path} answered {resp.status}: {resp.body[:200]!r}",
                    code="PERMISSION_REGISTRATION_FAILED", retryable=resp.status >= 500 or resp.status == 429)


async def register_feature_permissions(sctx: StepContext) -> StepResult:
    """The platform's auth Worker learns each feature's permission keys (its member defaults)."""
    registered, note = [], None
    for feat in _features(sctx):
        definition = _installed(sctx, feat["featureId"]).require()
        body = {"permissions": [{"key": p.key, "label": p.label, "required": p.required}
                                for p in definition.permissions]}
        answer = await _auth_call(sctx, "PUT", f"/api/nno/feature-permissions/{definition.id}", body)
        if answer is None:
            note = "the platform's auth Worker is not deployed: no permissions registered"
            break
        registered.append(definition.id)
    return StepResult({"featureIds": registered, **({"note": note} if note else {})}, bool(registered))


async def undo_register_feature_permissions(sctx: StepContext, output: dict[str, Any]) -> None:
    for fid in reversed(output.get("featureIds", [])):
        await _auth_call(sctx, "DELETE", f"/api/nno/feature-permissions/{fid}")


async def unregister_feature_permissions(sctx: StepContext) -> StepResult:
    removed = []
    for feat in _features(sctx):
        if await _auth_call(sctx, "DELETE", f"/api/nno/feature-permissions/{feat['featureId']}") is not None:
            removed.append(feat["featureId"])
    return StepResult({"featureIds": removed}, bool(removed))


def _feature_hosts(sctx: StepContext) -> list[tuple[str, str, str]]:
    stack, pid, env = _stack(sctx), sctx.platform_id, sctx.environment
    return [
        (naming.hostname(f["featureId"], "svc", stack, pid, sctx.base_domain, env),
         naming.feature_worker_name(pid, stack, f["featureId"], env), "svc")
        for f in _features(sctx)
    ]


async def register_feature_dns(sctx: StepContext) -> StepResult:
    return await ensure_hosts(sctx, _feature_hosts(sctx))


_FEATURE_RESOURCE_STEPS = ["create_shared_resources", "create_feature_resources", "deploy_feature_workers"]


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
        """Rebuild the console shell from the active features at once, and commit the change to the
        platform repository through the CLI Service, whose build publishes the same shell from the
        repository. One commit for the whole job (one build): a single feature goes through the
        documented `features/activate|deactivate` route, a stack's members through `features/apply`
        (with the members a new stack version drops)."""
        binding = sctx.ctx.bindings.get("cli")
        features = [f["featureId"] for f in _features(sctx)]
        shell = await publish_console(sctx)
        if binding is None:
            return StepResult({"shell": shell, "note": "the CLI Service is not part of this installation"})
        activate: list[dict[str, Any]] = []
        deactivate: list[str] = []
        if action == "activate":
            for feat in _features(sctx):
                config = sctx.payload.get("config") if sctx.job_type == "ACTIVATE_FEATURE" else feat.get("config")
                activate.append({"featureId": feat["featureId"],
                                 "version": _installed(sctx, feat["featureId"]).require().version,
                                 "config": dict(config or {})})
            dropped = sctx.outputs.get("fetch_stack_definition", {}).get("removed", [])
            deactivate = [str(f) for f in dropped if f not in features]
        else:
            deactivate = features
        if not activate and not deactivate:
            return StepResult({"features": features, "shell": shell, "commits": []}, changed=False)
        if len(activate) + len(deactivate) == 1:
            path, body = ("activate", dict(activate[0])) if activate else ("deactivate", {"featureId": deactivate[0]})
        else:
            path, body = "apply", {"activate": activate, "deactivate": deactivate}
        body["environment"] = sctx.environment
        resp = await binding.request("POST", f"/platforms/{sctx.platform_id}/features/{path}", json=body,
                                     headers=SERVICE_IDENTITY.to_headers())
        if resp.status == 404:
            return StepResult({"note": "the platform has no repository in the CLI Service"}, changed=False)
        if not resp.ok:
            raise StepError(f"CLI Service {path} answered {resp.status}: {resp.body[:200]!r}",
                            code="REBUILD_FAILED", retryable=resp.status >= 500)
        answer = resp.json() or {}
        commit = {"featureIds": [a["featureId"] for a in activate] + deactivate,
                  "commitSha": answer.get("commitSha"), "buildId": answer.get("buildId")}
        return StepResult({"features": features, "shell": shell, "commits": [commit] if commit["commitSha"] else []})

    return run


def _worker_targets(sctx: StepContext) -> list[tuple[str, str]]:
    return [("worker", naming.feature_worker_name(sctx.platform_id, _stack(sctx), f["featureId"], sctx.environment))
            for f in _features(sctx)]


def _dns_targets(sctx: StepContext) -> list[tuple[str, str]]:
    return [("dns", host) for host, _, _ in _feature_hosts(sctx)]


ACTIVATE_FEATURE_STEPS: tuple[Step, ...] = (
    Step("create_feature_resources", create_feature_resources, undo_created, _feature_resource_targets),
    Step("deploy_feature_workers", deploy_feature_workers, undo_created, _worker_targets),
    Step("run_feature_migrations", run_feature_migrations),
    Step("register_dns", register_feature_dns, undo_created, _dns_targets),
    Step("register_permissions", register_feature_permissions, undo_register_feature_permissions),
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
    Step("run_deactivate_hooks", run_deactivate_hooks),
    Step("unregister_permissions", unregister_feature_permissions),
    Step("remove_resources", remove_feature_resources),
    Step("record_deactivation", record_deactivations),
    Step("trigger_shell_rebuild", _rebuild("deactivate")),
)
