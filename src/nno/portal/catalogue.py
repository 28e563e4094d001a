"""Stacks and features ("Zero UI"): the Stack Registry's catalogue, the platform's stacks and the
installed feature packages, with activate, upgrade and deactivate behind a confirmation, then the
provisioning job followed live. The same routes `nno stack` and `nno feature` use."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.gateway_client import Answer
from nno.portal.platforms import STACKS, _data, _id, _not_found, _platform
from nno.portal.web import JOBS, PLATFORMS, PortalError, Web, WebDep, form_data, redirect

router = APIRouter()
PROVISION = "/api/v1/provisioning/provision"
FEATURES = f"{PROVISION}/features"
ENVIRONMENTS = ("prod", "stg", "dev")
# A job holds its live key until one of these (FAILED still rolls back).
TERMINAL_JOB_STATES = ("COMPLETED", "ROLLED_BACK", "ROLLBACK_FAILED")
ACTIVATABLE_STACK_STATES = ("pending", "failed", "deactivated")

CONSEQUENCES = {
    "activate": "NNO runs a provisioning job: the stack's shared resources and each of its features' Workers, "
                "databases, DNS names and permissions are created on the platform. If a step fails, the whole "
                "job is rolled back.",
    "upgrade": "NNO runs a provisioning job that moves the stack to the chosen version: features are added, "
               "removed or upgraded and their migrations run. If a step fails, the stack is rolled back whole, "
               "data included.",
    "deactivate": "The stack's Workers and DNS names are removed and its features stop answering. Its shared "
                  "data is kept unless you ask for it to be deleted.",
    "feature-activate": "NNO runs a provisioning job: the feature's resources, Worker, migrations, DNS name and "
                        "permissions are created, and it appears in the platform's console.",
    "feature-deactivate": "The feature's Worker, DNS name and permissions are removed and it leaves the console. "
                          "Its data is kept unless you ask for it to be deleted.",
}


def _environment(value: str) -> str:
    return value if value in ENVIRONMENTS else "prod"


async def _stack(w: Web, platform_id: str, stack_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await w.must(await w.api("GET", f"{PLATFORMS}/{platform_id}/stacks/{_id(stack_id)}"))
    return data


async def _tenants(w: Web, platform_id: str) -> list[dict[str, Any]]:
    return _data(await w.api("GET", f"{PLATFORMS}/{platform_id}/tenants", params={"limit": 100}))


async def _versions(w: Web, template: str) -> list[dict[str, Any]]:
    answer = await w.api("GET", f"{STACKS}/{quote(template, safe='')}/versions")
    return [v for v in _data(answer) if v.get("status") != "deprecated"]


def _follow(platform_id: str, answer_data: Any, request: Request) -> Response:
    job_id = str((answer_data or {}).get("jobId") or "")
    return redirect(f"/platforms/{quote(platform_id, safe='')}/jobs/{quote(job_id, safe='')}", request)


# --- the page -----------------------------------------------------------------------------------

@router.get("/platforms/{platform_id}/stacks")
async def stacks(w: WebDep, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    pid = platform["id"]
    active = await w.api("GET", f"{PLATFORMS}/{pid}/stacks", params={"limit": 100})
    activations = await w.api("GET", f"{PLATFORMS}/{pid}/features", params={"limit": 100})
    installed = await w.api("GET", FEATURES)
    catalogue = await w.api("GET", STACKS)
    live = [a for a in _data(activations) if a.get("status") not in ("deactivated", "deleted")]
    active_ids = {str(a.get("featureId")) for a in live}
    return w.render(
        "stacks.html", platform=platform, stacks=_data(active), activations=live, active_ids=active_ids,
        installed=_data(installed) if installed.ok else None,
        catalogue=_data(catalogue) if catalogue.ok else None,
        error=None if active.ok else active.message, activatable=ACTIVATABLE_STACK_STATES)


# --- stacks -------------------------------------------------------------------------------------

@router.get("/platforms/{platform_id}/stacks/activate")
async def confirm_new_stack(w: WebDep, platform_id: str, template: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    detail = await w.must(await w.api("GET", f"{STACKS}/{_id(template)}"))
    return w.render("stack_confirm.html", platform=platform, action="activate", tpl=detail.get("template"),
                    latest=detail.get("latestVersion"), versions=await _versions(w, template),
                    tenants=await _tenants(w, platform["id"]), consequence=CONSEQUENCES["activate"],
                    environments=ENVIRONMENTS, post=f"/platforms/{quote(platform['id'], safe='')}/stacks/activate")


@router.post("/platforms/{platform_id}/stacks/activate")
async def activate_new_stack(w: WebDep, request: Request, platform_id: str) -> Response:
    """As `nno stack activate TEMPLATE`: the template version is checked first, then the stack row is
    made for the chosen tenant, then the activation job is submitted."""
    await w.require_me()
    platform = await _platform(w, platform_id)
    pid = platform["id"]
    form = await form_data(request)
    template = _id(form.get("template", ""))
    version = form.get("version", "")
    await w.must(await w.api("GET", f"{STACKS}/{template}/versions/{_id(version) if version else 'latest'}"))
    tenant = form.get("tenant", "")
    if not tenant:
        tenants = await _tenants(w, pid)
        if not tenants:
            raise PortalError(_refusal(409, "NO_TENANT", "This platform has no tenant to own the stack: "
                                                         "create one on the Tenants page first."))
        tenant = str(tenants[0]["id"])
    row = await w.must(await w.api("POST", f"{PLATFORMS}/{pid}/stacks",
                                   json={"tenantId": tenant, "name": form.get("name") or template,
                                         "templateId": template}))
    body: dict[str, Any] = {"platformId": pid, "stackId": row["id"], "templateId": template,
                            "environment": _environment(form.get("environment", ""))}
    if version:
        body["templateVersion"] = version
    accepted = await w.must(await w.api("POST", f"{PROVISION}/stack/activate", json=body))
    return _follow(pid, accepted, request)


def _refusal(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


@router.get("/platforms/{platform_id}/stacks/{stack_id}/{action}")
async def confirm_stack_action(w: WebDep, platform_id: str, stack_id: str, action: str) -> Response:
    await w.require_me()
    if action not in ("activate", "upgrade", "deactivate"):
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    stack = await _stack(w, platform["id"], stack_id)
    template = str(stack.get("templateId") or "")
    versions = await _versions(w, template) if template and action != "deactivate" else []
    return w.render("stack_confirm.html", platform=platform, action=action, stack=stack, versions=versions,
                    consequence=CONSEQUENCES[action], environments=ENVIRONMENTS,
                    post=f"/platforms/{quote(platform['id'], safe='')}/stacks/{quote(stack['id'], safe='')}/{action}")


@router.post("/platforms/{platform_id}/stacks/{stack_id}/{action}")
async def apply_stack_action(w: WebDep, request: Request, platform_id: str, stack_id: str, action: str) -> Response:
    await w.require_me()
    if action not in ("activate", "upgrade", "deactivate"):
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    pid = platform["id"]
    stack = await _stack(w, pid, stack_id)
    form = await form_data(request)
    body: dict[str, Any] = {"platformId": pid, "stackId": stack["id"],
                            "environment": _environment(form.get("environment", ""))}
    if action in ("activate", "upgrade") and form.get("version"):
        body["templateVersion"] = form["version"]
    if action == "activate" and stack.get("templateId"):
        body["templateId"] = stack["templateId"]
    if action == "deactivate":
        body["deleteData"] = form.get("deleteData") == "on"
    accepted = await w.must(await w.api("POST", f"{PROVISION}/stack/{action}", json=body))
    return _follow(pid, accepted, request)


# --- features -----------------------------------------------------------------------------------

@router.get("/platforms/{platform_id}/features/{feature_id}/{action}")
async def confirm_feature_action(w: WebDep, platform_id: str, feature_id: str, action: str,
                                 entity: str = "", environment: str = "prod", stack: str = "default") -> Response:
    await w.require_me()
    if action not in ("activate", "deactivate"):
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    feature = await w.must(await w.api("GET", f"{FEATURES}/{_id(feature_id)}"))
    stacks = _data(await w.api("GET", f"{PLATFORMS}/{platform['id']}/stacks", params={"limit": 100}))
    return w.render("feature_confirm.html", platform=platform, action=action, feature=feature,
                    tenants=await _tenants(w, platform["id"]), stacks=stacks, environments=ENVIRONMENTS,
                    entity=entity, environment=_environment(environment), stack=stack,
                    consequence=CONSEQUENCES[f"feature-{action}"])


@router.post("/platforms/{platform_id}/features/{feature_id}/{action}")
async def apply_feature_action(w: WebDep, request: Request, platform_id: str, feature_id: str,
                               action: str) -> Response:
    """As `nno feature activate|deactivate`: the entity defaults to the platform's first tenant."""
    await w.require_me()
    if action not in ("activate", "deactivate"):
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    pid = platform["id"]
    form = await form_data(request)
    entity = form.get("entity", "")
    if not entity:
        tenants = await _tenants(w, pid)
        entity = str(tenants[0]["id"]) if tenants else pid
    body: dict[str, Any] = {"platformId": pid, "entityId": entity, "featureId": _id(feature_id),
                            "environment": _environment(form.get("environment", "")),
                            "stackId": form.get("stack") or "default"}
    if action == "activate":
        body["featureVersion"] = form.get("version") or "latest"
    else:
        body["deleteData"] = form.get("deleteData") == "on"
    accepted = await w.must(await w.api("POST", f"{PROVISION}/feature/{action}", json=body))
    return _follow(pid, accepted, request)


# --- a job, followed live -------------------------------------------------------------------------

async def _job(w: Web, platform_id: str, job_id: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    platform = await _platform(w, platform_id)
    job: dict[str, Any] = await w.must(await w.api("GET", f"{JOBS}/{_id(job_id)}"))
    if job.get("platformId") != platform["id"]:
        raise PortalError(_not_found())
    events = _data(await w.api("GET", f"{JOBS}/{job_id}/events"))
    return platform, job, events


@router.get("/platforms/{platform_id}/jobs/{job_id}")
async def job_page(w: WebDep, platform_id: str, job_id: str) -> Response:
    await w.require_me()
    platform, job, events = await _job(w, platform_id, job_id)
    return w.render("job.html", platform=platform, job=job, events=events,
                    running=job.get("status") not in TERMINAL_JOB_STATES)


@router.get("/platforms/{platform_id}/jobs/{job_id}/progress")
async def job_progress(w: WebDep, platform_id: str, job_id: str) -> Response:
    """The job's steps and events; htmx swaps this in every second until the job has ended."""
    await w.require_me()
    platform, job, events = await _job(w, platform_id, job_id)
    return w.render("_job.html", platform=platform, job=job, events=events,
                    running=job.get("status") not in TERMINAL_JOB_STATES)
