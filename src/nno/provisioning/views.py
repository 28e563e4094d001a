"""Provisioning routes (docs/contracts.md §5), mounted at the gateway's /api/v1/provisioning."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from nno.kernel.errors import NNOError
from nno.kernel.identity import Identity, get_identity
from nno.kernel.platform_status import GONE_STATUSES, check_not_suspended
from nno.kernel.scopes import action_of, scope_guard
from nno.kernel.service import ServiceContext
from nno.provisioning import features, service
from nno.provisioning import jobs as J
from nno.provisioning.errors import StepError
from nno.provisioning.registry_client import RegistryClient
from nno.provisioning.schemas import (
    DeadLetterOut,
    DeprovisionPlatformRequest,
    FeatureActivateRequest,
    FeatureDeactivateRequest,
    JobAccepted,
    JobEventOut,
    JobOut,
    JobPage,
    ProvisionPlatformRequest,
    StackActivateRequest,
    StackDeactivateRequest,
    StackUpgradeRequest,
    dead_letter_out,
    event_out,
    job_out,
)
from nno.provisioning.stacks import StackRefused, resolve_stack
from nno.sdk.stack import is_newer


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _accepted(job: Any, duplicate: bool) -> JSONResponse:
    body = JobAccepted(jobId=job.id, status=job.status, duplicate=duplicate)
    return JSONResponse(body.model_dump(), status_code=202)


async def _require_platform(ctx: ServiceContext, identity: Identity, platform_id: str, job_type: str, *,
                            must_exist: bool = True) -> None:
    """Jobs other than the bootstrap act on a platform that must already exist; and on a `cancelled`
    or `deleted` platform only the job types that remove things are accepted: anything else would
    deploy Workers the Registry then refuses to record (409 PLATFORM_INACTIVE), and roll back. On a
    `suspended` platform only services and operators start jobs (`check_not_suspended`)."""
    if ctx.bindings.get("registry") is None:
        return
    try:
        resp = await RegistryClient(ctx).call("GET", f"/{platform_id}/status", allow=(404,))
    except StepError:
        if must_exist:
            raise
        return  # the bootstrap's first step reads the platform again, and fails there if it must
    if resp.status == 404:
        if must_exist:
            raise NNOError(404, "PLATFORM_NOT_FOUND", f"Platform {platform_id} not found")
        return
    body = resp.json()
    status = body.get("status") if isinstance(body, dict) else None
    check_not_suspended(platform_id, status if isinstance(status, str) else None,
                        privileged=identity.is_privileged, operation=f"start a {job_type} job")
    if status in GONE_STATUSES and job_type not in J.REMOVING_JOB_TYPES:
        raise NNOError(409, "PLATFORM_INACTIVE",
                       f"Cannot start a {job_type} job: the platform is {status}; it only sheds what it has",
                       {"platformId": platform_id, "status": status, "jobType": job_type,
                        "allowedJobTypes": sorted(J.REMOVING_JOB_TYPES)})


async def _require_known_feature(ctx: ServiceContext, platform_id: str, feature_id: str) -> None:
    """Deactivating needs the package installed, or the Registry to know an activation of it (an
    uninstalled package's Worker, DNS and data can still be removed by name)."""
    if features.get_feature(feature_id) is not None or ctx.bindings.get("registry") is None:
        return
    try:
        known = await RegistryClient(ctx).list_features(platform_id)
    except StepError:
        known = []
    if not any(f.get("featureId") == feature_id for f in known):
        raise NNOError(404, "FEATURE_NOT_FOUND", f"No feature package {feature_id!r} is installed, and platform "
                       f"{platform_id} has no activation of it", {"featureId": feature_id})


def provisioning_scope(method: str, path: str) -> str:
    """Every Provisioning route is `provisioning:read` or `provisioning:write` for a scoped key."""
    return f"provisioning:{action_of(method)}"


router = APIRouter(prefix="/provision", tags=["provisioning"], dependencies=[Depends(scope_guard(provisioning_scope))])


@router.post("/platform", status_code=202, response_model=JobAccepted)
async def provision_platform(body: ProvisionPlatformRequest, request: Request,
                             identity: Identity = Depends(get_identity)) -> JSONResponse:
    service.require_privileged(identity)
    ctx = _ctx(request)
    # The bootstrap may name a platform the Registry does not know (yet); its first step says so.
    await _require_platform(ctx, identity, body.platformId, "PROVISION_PLATFORM", must_exist=False)
    job, dup = await service.submit(
        ctx, identity, job_type="PROVISION_PLATFORM", platform_id=body.platformId,
        target=body.platformId, environment=body.environment, payload=body.model_dump(exclude_none=True),
        entity_id=body.defaultEntityId, onboarding_session_id=body.onboardingSessionId,
    )
    return _accepted(job, dup)


@router.post("/platform/deprovision", status_code=202, response_model=JobAccepted)
async def deprovision_platform(body: DeprovisionPlatformRequest, request: Request,
                               identity: Identity = Depends(get_identity)) -> JSONResponse:
    service.require_privileged(identity)
    ctx = _ctx(request)
    await _require_platform(ctx, identity, body.platformId, "DEPROVISION_PLATFORM")
    job, dup = await service.submit(
        ctx, identity, job_type="DEPROVISION_PLATFORM", platform_id=body.platformId, target=body.platformId,
        environment=body.environment, payload=body.model_dump(exclude_none=True),
    )
    return _accepted(job, dup)


@router.post("/feature/activate", status_code=202, response_model=JobAccepted)
async def activate_feature(body: FeatureActivateRequest, request: Request,
                           identity: Identity = Depends(get_identity)) -> JSONResponse:
    ctx = _ctx(request)
    await service.require_manage(ctx, identity, body.platformId)
    await _require_platform(ctx, identity, body.platformId, "ACTIVATE_FEATURE")
    # An unknown, invalid or other-version package is refused before any job exists.
    try:
        installed = features.activatable(body.featureId, body.featureVersion).require()
    except features.FeatureRefused as exc:
        raise exc.as_nno_error() from exc
    job, dup = await service.submit(
        ctx, identity, job_type="ACTIVATE_FEATURE", platform_id=body.platformId,
        target=f"{body.stackId}:{body.entityId}:{body.featureId}:{body.environment}",
        environment=body.environment, payload={**body.model_dump(), "featureVersion": installed.version},
        entity_id=body.entityId,
    )
    return _accepted(job, dup)


@router.post("/feature/deactivate", status_code=202, response_model=JobAccepted)
async def deactivate_feature(body: FeatureDeactivateRequest, request: Request,
                             identity: Identity = Depends(get_identity)) -> JSONResponse:
    ctx = _ctx(request)
    await service.require_manage(ctx, identity, body.platformId)
    await _require_platform(ctx, identity, body.platformId, "DEACTIVATE_FEATURE")
    await _require_known_feature(ctx, body.platformId, body.featureId)
    job, dup = await service.submit(
        ctx, identity, job_type="DEACTIVATE_FEATURE", platform_id=body.platformId,
        target=f"{body.stackId}:{body.entityId}:{body.featureId}:{body.environment}",
        environment=body.environment, payload=body.model_dump(), entity_id=body.entityId,
    )
    return _accepted(job, dup)


@router.post("/stack/activate", status_code=202, response_model=JobAccepted)
async def activate_stack(body: StackActivateRequest, request: Request,
                         identity: Identity = Depends(get_identity)) -> JSONResponse:
    ctx = _ctx(request)
    await service.require_manage(ctx, identity, body.platformId)
    await _require_platform(ctx, identity, body.platformId, "ACTIVATE_STACK")
    payload = await _stack_payload(ctx, body)
    job, dup = await service.submit(
        ctx, identity, job_type="ACTIVATE_STACK", platform_id=body.platformId,
        target=f"{body.stackId}:{body.environment}", environment=body.environment,
        payload=payload, entity_id=body.entityId,
    )
    return _accepted(job, dup)


async def _stack_payload(ctx: ServiceContext, body: StackActivateRequest) -> dict[str, Any]:
    """The job's payload with its definition resolved and checked now (a bad request is a 4xx and no
    job): Path A takes the template the Registry's stack row names unless the request names one, and
    pins the version (latest when not given)."""
    payload = body.model_dump(mode="json", exclude_none=True)
    if body.definition is not None:
        payload["definition"] = body.definition.model_dump(mode="json", exclude_none=True)
    if ctx.bindings.get("registry") is not None:
        resp = await RegistryClient(ctx).call("GET", f"/{body.platformId}/stacks/{body.stackId}", allow=(404,))
        if resp.status == 404:
            raise NNOError(404, "STACK_NOT_FOUND", f"Platform {body.platformId} has no stack {body.stackId}",
                           {"stackId": body.stackId})
        recorded = resp.json().get("templateId")
        if body.templateId and recorded and body.templateId != recorded:
            raise NNOError(409, "STACK_TEMPLATE_MISMATCH",
                           f"Stack {body.stackId} was made from {recorded!r}, not {body.templateId!r}",
                           {"stackId": body.stackId, "templateId": recorded})
        if recorded and body.definition is None and not body.features:
            payload.setdefault("templateId", recorded)
    try:
        resolved = await resolve_stack(ctx, payload, submitting=True)
    except StackRefused as exc:
        raise exc.as_nno_error() from exc
    if resolved.template_version:
        payload["templateVersion"] = resolved.template_version
    return payload


@router.post("/stack/upgrade", status_code=202, response_model=JobAccepted)
async def upgrade_stack(body: StackUpgradeRequest, request: Request,
                        identity: Identity = Depends(get_identity)) -> JSONResponse:
    """An ACTIVATE_STACK job to a newer template version (the same job type, so one activation or
    upgrade of a stack runs at a time): members added, removed and upgraded, their migrations run,
    the whole job rolled back, data included, if a step fails."""
    ctx = _ctx(request)
    await service.require_manage(ctx, identity, body.platformId)
    await _require_platform(ctx, identity, body.platformId, "ACTIVATE_STACK")
    resp = await RegistryClient(ctx).call("GET", f"/{body.platformId}/stacks/{body.stackId}", allow=(404,))
    if resp.status == 404:
        raise NNOError(404, "STACK_NOT_FOUND", f"Platform {body.platformId} has no stack {body.stackId}",
                       {"stackId": body.stackId})
    stack = resp.json()
    current = stack.get("templateVersion")
    if stack.get("status") != "active" or not stack.get("templateId") or not current:
        raise NNOError(409, "STACK_NOT_UPGRADABLE", "Only an active stack made from a template can be upgraded",
                       {"stackId": body.stackId, "status": stack.get("status"), "templateId": stack.get("templateId")})
    payload: dict[str, Any] = {**body.model_dump(mode="json", exclude_none=True), "templateId": stack["templateId"],
                               "upgradeFrom": current}
    try:
        resolved = await resolve_stack(ctx, payload, submitting=True)
    except StackRefused as exc:
        raise exc.as_nno_error() from exc
    target = str(resolved.template_version)
    if not is_newer(target, current):
        raise NNOError(409, "NOT_NEWER", f"Stack {body.stackId} runs {current}; {target} is not newer",
                       {"current": current, "target": target})
    payload["templateVersion"] = target
    job, dup = await service.submit(
        ctx, identity, job_type="ACTIVATE_STACK", platform_id=body.platformId,
        target=f"{body.stackId}:{body.environment}", environment=body.environment,
        payload=payload, entity_id=body.entityId,
    )
    return _accepted(job, dup)


@router.post("/stack/deactivate", status_code=202, response_model=JobAccepted)
async def deactivate_stack(body: StackDeactivateRequest, request: Request,
                           identity: Identity = Depends(get_identity)) -> JSONResponse:
    ctx = _ctx(request)
    await service.require_manage(ctx, identity, body.platformId)
    await _require_platform(ctx, identity, body.platformId, "DEACTIVATE_STACK")
    job, dup = await service.submit(
        ctx, identity, job_type="DEACTIVATE_STACK", platform_id=body.platformId,
        target=f"{body.stackId}:{body.environment}", environment=body.environment,
        payload=body.model_dump(exclude_none=True), entity_id=body.entityId,
    )
    return _accepted(job, dup)


@router.get("/jobs", response_model=JobPage)
async def list_jobs(
    request: Request,
    identity: Identity = Depends(get_identity),
    platformId: str | None = Query(None, pattern=r"^[a-z0-9]{10}$"),
    status: str | None = Query(None),
    type: str | None = Query(None),
    limit: int | None = Query(None),
    cursor: str | None = Query(None, max_length=500),
) -> dict[str, Any]:
    page = await service.list_jobs(_ctx(request), identity, platform_id=platformId, status=status,
                                   job_type=type, limit=limit, cursor=cursor)
    page["data"] = [job_out(j) for j in page["data"]]
    return page


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: str, request: Request, identity: Identity = Depends(get_identity)) -> dict[str, Any]:
    return job_out(await service.get_job(_ctx(request), identity, job_id))


@router.get("/jobs/{job_id}/events", response_model=dict[str, list[JobEventOut]])
async def get_job_events(job_id: str, request: Request,
                         identity: Identity = Depends(get_identity)) -> dict[str, Any]:
    events = await service.job_events(_ctx(request), identity, job_id)
    return {"data": [event_out(e) for e in events]}


@router.post("/jobs/{job_id}/retry", status_code=202, response_model=JobAccepted)
async def retry_job(job_id: str, request: Request, identity: Identity = Depends(get_identity)) -> JSONResponse:
    ctx = _ctx(request)
    service.require_privileged(identity)
    # A retry runs the job's steps again: on a gone platform the same rule as a submission applies.
    failed = await service.get_job(ctx, identity, job_id)
    await _require_platform(ctx, identity, failed.platform_id, failed.type, must_exist=False)
    job = await service.retry_job(ctx, identity, job_id)
    return _accepted(job, False)


@router.get("/dead-letters", response_model=dict[str, list[DeadLetterOut]])
async def dead_letters(request: Request, identity: Identity = Depends(get_identity),
                       unresolved: bool = Query(False)) -> dict[str, Any]:
    letters = await service.list_dead_letters(_ctx(request), identity, unresolved_only=unresolved)
    return {"data": [dead_letter_out(d) for d in letters]}


@router.get("/features")
async def installed_features(identity: Identity = Depends(get_identity)) -> dict[str, Any]:
    """The feature packages installed where provisioning runs (what ACTIVATE_FEATURE can deploy),
    each with its validation verdict."""
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    data = [features.summary(f) for f in features.discover_features().values()]
    return {"data": data, "total": len(data)}


@router.get("/features/{feature_id}")
async def installed_feature(feature_id: str, identity: Identity = Depends(get_identity)) -> dict[str, Any]:
    if identity.auth_type == "anonymous":
        raise NNOError(401, "UNAUTHORIZED", "Authentication required")
    try:
        return features.summary(features.installed_feature(feature_id), detail=True)
    except features.FeatureRefused as exc:
        raise exc.as_nno_error() from exc
