"""Platform pages: onboarding with live progress, list and detail, lifecycle actions, tenants,
members, API keys, jobs and the audit log. Each goes through the gateway route the CLI uses."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.gateway_client import Answer
from nno.portal.web import IAM, JOBS, KEYS, ONBOARDING, PLATFORMS, PortalError, WebDep, form_data, redirect

router = APIRouter()
STACKS = "/api/v1/stacks"  # the Stack Registry's catalogue (another service; may not be deployed)
TIERS = ("starter", "growth", "scale")
FAILED_JOB_STATES = {"FAILED", "ROLLED_BACK", "ROLLBACK_FAILED"}
# What each lifecycle action does, said on its confirmation page before it is applied.
CONSEQUENCES: dict[str, str] = {
    "suspend": "Every request to this platform will be refused (451) until it is restored. Its data is kept.",
    "restore": "The platform becomes active again and its users can use it at once.",
    "cancel": "The platform is cancelled: it stays usable until the end of the billing period, then it is "
              "closed and its API answers 410 Gone.",
    "delete": "The platform is deleted: its API answers 410 Gone and its resources are torn down.",
}
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _id(value: str) -> str:
    """A path segment for the gateway, so a crafted id cannot reach another route."""
    if not _ID_RE.match(value):
        raise PortalError(_not_found())
    return value


def slugify(name: str) -> str:
    out: list[str] = []
    for ch in name.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")[:63]


# --- onboarding ---------------------------------------------------------------------------------

@router.get("/platforms/new")
async def new_platform_page(w: WebDep) -> Response:
    await w.require_me()
    templates = await _stack_templates(w)
    return w.render("onboard.html", tiers=TIERS, tier="starter", stack_templates=templates)


async def _stack_templates(w: Any) -> list[dict[str, Any]] | None:
    """The Stack Registry's catalogue, or None while it is not deployed (the gateway's 404)."""
    answer = await w.api("GET", STACKS)
    if answer.ok and isinstance(answer.data, dict):
        return [t for t in answer.data.get("data", []) if isinstance(t, dict)]
    return None


@router.post("/platforms/new")
async def create_platform(w: WebDep, request: Request) -> Response:
    await w.require_me()
    form = await form_data(request)
    name = form.get("name", "")
    slug = form.get("slug") or slugify(name)
    tier = form.get("tier", "starter")
    body: dict[str, Any] = {"platformName": name, "slug": slug, "tier": tier}
    if form.get("stackTemplateId"):
        body["stackTemplateId"] = form["stackTemplateId"]
    answer = await w.api("POST", ONBOARDING, json=body)
    if not answer.ok:
        return w.render("onboard.html", status_code=answer.status, tiers=TIERS, error=answer.message,
                        name=name, slug=form.get("slug", ""), tier=tier,
                        stack_templates=await _stack_templates(w))
    if answer.data.get("platformId"):
        # As `nno platform create` does: the new platform becomes the session's active one.
        await w.api("POST", f"{IAM}/api/nno/session/active-platform",
                    json={"platformId": answer.data["platformId"]})
    return redirect(f"/onboarding/{quote(str(answer.data['id']), safe='')}", request)


async def _progress(w: Any, session_id: str) -> dict[str, Any]:
    session = await w.must(await w.api("GET", f"{ONBOARDING}/{_id(session_id)}"))
    job_id = session.get("provisionJobId") or next(
        (s.get("jobId") for s in session.get("steps") or [] if s.get("name") == "provision_infra"), None)
    job: dict[str, Any] | None = None
    if job_id:
        answer = await w.api("GET", f"{JOBS}/{quote(str(job_id), safe='')}")
        job = answer.data if answer.ok else None
    platform = None
    if session.get("platformId"):
        answer = await w.api("GET", f"{PLATFORMS}/{quote(str(session['platformId']), safe='')}")
        platform = answer.data if answer.ok else None
    failed = session.get("status") == "failed" or bool(job and job.get("status") in FAILED_JOB_STATES)
    done = bool(platform and platform.get("status") == "active" and (job is None or job.get("status") == "COMPLETED"))
    return {"session": session, "job": job, "platform": platform, "failed": failed, "done": done}


@router.get("/onboarding/{session_id}")
async def onboarding_page(w: WebDep, session_id: str) -> Response:
    await w.require_me()
    return w.render("onboarding.html", **await _progress(w, session_id))


@router.get("/onboarding/{session_id}/progress")
async def onboarding_progress(w: WebDep, session_id: str) -> Response:
    await w.require_me()
    state = await _progress(w, session_id)
    response = w.render("_progress.html", **state)
    if state["done"] and state["platform"]:
        response.headers["HX-Redirect"] = f"/platforms/{quote(state['platform']['id'], safe='')}?welcome=1"
    elif state["failed"]:
        response.headers["HX-Trigger"] = "provisioning-failed"
    return response


# --- platforms ----------------------------------------------------------------------------------

@router.get("/platforms")
async def platform_list(w: WebDep, cursor: str = "", status: str = "") -> Response:
    await w.require_me()
    page = await w.must(await w.api("GET", PLATFORMS, params={"limit": 25, "cursor": cursor, "status": status}))
    return w.render("platforms.html", page=page, platforms=page.get("data", []), status=status)


async def _platform(w: Any, platform_id: str) -> dict[str, Any]:
    data: dict[str, Any] = await w.must(await w.api("GET", f"{PLATFORMS}/{_id(platform_id)}"))
    return data


def _data(answer: Any) -> list[dict[str, Any]]:
    return [d for d in (answer.data or {}).get("data", []) if isinstance(d, dict)] if answer.ok else []


@router.get("/platforms/{platform_id}")
async def platform_detail(w: WebDep, platform_id: str, welcome: str = "") -> Response:
    me = await w.require_me()
    platform = await _platform(w, platform_id)
    base = f"{PLATFORMS}/{platform_id}"
    resources = await w.api("GET", f"{base}/resources", params={"limit": 100})
    dns = await w.api("GET", f"{base}/dns-records", params={"limit": 100})
    events = await w.api("GET", f"{base}/lifecycle-events", params={"limit": 50})
    jobs = await w.api("GET", JOBS, params={"platformId": platform_id, "limit": 20})
    records = _data(dns)
    return w.render("platform.html", me=me, platform=platform, resources=_data(resources), dns=records,
                    urls=_urls(records, w.config.public_url), events=_data(events), jobs=_data(jobs),
                    welcome=welcome == "1", actions=_actions(platform, me))


def _urls(records: list[dict[str, Any]], public_url: str) -> list[tuple[str, str]]:
    """The platform's web addresses, console and auth first, on the scheme and port NNO is served
    on (the local cloud answers them on the core's own port)."""
    public = urlsplit(public_url)
    port = f":{public.port}" if public.port else ""
    out = []
    for rec in records:
        host = str(rec.get("hostname") or "")
        if not host:
            continue
        label = "Console" if "console" in host else "Auth" if "auth" in host else "Site"
        out.append((label, f"{public.scheme or 'https'}://{host}{port}"))
    order = {"Console": 0, "Auth": 1, "Site": 2}
    return sorted(out, key=lambda pair: order[pair[0]])


def _actions(platform: dict[str, Any], me: dict[str, Any]) -> list[str]:
    status = platform.get("status")
    operator = me.get("role") == "nno-operator"
    actions = []
    if status == "active" and operator:
        actions.append("suspend")
    if status == "suspended" and operator:
        actions.append("restore")
    if status in ("active", "suspended"):
        actions.append("cancel")
    return actions


@router.get("/platforms/{platform_id}/lifecycle/{action}")
async def confirm_lifecycle(w: WebDep, platform_id: str, action: str) -> Response:
    await w.require_me()
    if action not in CONSEQUENCES:
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    return w.render("confirm.html", platform=platform, action=action, consequence=CONSEQUENCES[action])


def _not_found() -> Answer:
    return Answer(404, {"error": {"code": "NOT_FOUND", "message": "There is no such page."}})


@router.post("/platforms/{platform_id}/lifecycle/{action}")
async def apply_lifecycle(w: WebDep, request: Request, platform_id: str, action: str) -> Response:
    await w.require_me()
    if action not in CONSEQUENCES:
        raise PortalError(_not_found())
    form = await form_data(request)
    body: dict[str, Any] = {"action": action}
    if form.get("reason"):
        body["reason"] = form["reason"]
    await w.must(await w.api("POST", f"{PLATFORMS}/{_id(platform_id)}/lifecycle", json=body))
    back = form.get("back")
    return redirect("/operators" if back == "operators" else f"/platforms/{platform_id}", request)


# --- tenants ------------------------------------------------------------------------------------

@router.get("/platforms/{platform_id}/tenants")
async def tenants(w: WebDep, platform_id: str, cursor: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    page = await w.must(await w.api("GET", f"{PLATFORMS}/{platform_id}/tenants",
                                    params={"limit": 50, "cursor": cursor}))
    return w.render("tenants.html", platform=platform, page=page, tenants=page.get("data", []),
                    undelivered=await _undelivered(w, platform_id))


async def _undelivered(w: Any, platform_id: str) -> list[dict[str, Any]]:
    """Tenants whose organization is not yet on the platform's auth Worker after at least one attempt
    (a row not tried yet is a delivery in flight, not news); none for those who may not see them (the
    Registry's 403: not the platform's admin)."""
    rows = _data(await w.api("GET", f"{PLATFORMS}/{_id(platform_id)}/tenant-orgs", params={"limit": 100}))
    return [r for r in rows if r.get("status") == "failed" or r.get("attempts", 0) > 0]


@router.post("/platforms/{platform_id}/tenant-orgs/{row_id}/retry")
async def retry_tenant_org(w: WebDep, request: Request, platform_id: str, row_id: str) -> Response:
    await w.require_me()
    answer = await w.api("POST", f"{PLATFORMS}/{_id(platform_id)}/tenant-orgs/{_id(row_id)}/retry", json={})
    if answer.status != 409:  # already back in delivery (another click): show the rows as they are
        await w.must(answer)
    if request.headers.get("hx-request"):
        platform = {"id": platform_id}
        return w.render("_tenant_orgs.html", platform=platform, undelivered=await _undelivered(w, platform_id))
    return redirect(f"/platforms/{platform_id}/tenants", request)


@router.post("/platforms/{platform_id}/tenants")
async def create_tenant(w: WebDep, request: Request, platform_id: str) -> Response:
    await w.require_me()
    form = await form_data(request)
    name = form.get("name", "")
    path = f"{PLATFORMS}/{_id(platform_id)}/tenants"
    parent = form.get("parent", "")
    if parent:
        path = f"{path}/{_id(parent)}/sub-tenants"
    answer = await w.api("POST", path, json={"name": name, "slug": form.get("slug") or slugify(name)})
    if not answer.ok:
        if answer.status == 401:
            await w.must(answer)
        platform = await _platform(w, platform_id)
        page = (await w.api("GET", f"{PLATFORMS}/{platform_id}/tenants", params={"limit": 50})).data or {}
        return w.render("tenants.html", status_code=answer.status, platform=platform, page=page,
                        tenants=page.get("data", []), error=answer.message, name=name)
    return redirect(f"/platforms/{platform_id}/tenants/{parent}" if parent else f"/platforms/{platform_id}/tenants",
                    request)


@router.get("/platforms/{platform_id}/tenants/{tenant_id}")
async def tenant_page(w: WebDep, platform_id: str, tenant_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    tenant = await w.must(await w.api("GET", f"{PLATFORMS}/{platform_id}/tenants/{_id(tenant_id)}"))
    subs = await w.api("GET", f"{PLATFORMS}/{platform_id}/tenants/{tenant_id}/sub-tenants", params={"limit": 100})
    return w.render("tenant.html", platform=platform, tenant=tenant, subs=_data(subs))


# --- members ------------------------------------------------------------------------------------

INVITATIONS = f"{IAM}/api/nno/platform-invitations"
PLATFORM_ROLES = ("user", "platform-admin")


REMOVE_CONSEQUENCE = ("{who} loses {platform} at once: its pages, its API and the API keys they made stop "
                     "working for them at their next request. Inviting them again is the only way back.")


def _member_rows(members: list[dict[str, Any]], platform: dict[str, Any], me: dict[str, Any] | None,
                 can_manage: bool) -> list[dict[str, Any]]:
    """Each member with what the page may offer: a role change and removal, or why not (the
    platform's owner and its last platform-admin keep their admin role; IAM enforces it too)."""
    admins = sum(1 for m in members if m.get("role") == "platform-admin")
    me_id = (me or {}).get("userId")
    rows = []
    for m in members:
        locked = None
        if m.get("userId") and m.get("userId") == platform.get("ownerUserId"):
            locked = "The platform's owner stays platform-admin and cannot be removed."
        elif m.get("role") == "platform-admin" and admins <= 1:
            locked = ("The last platform-admin cannot be demoted or removed: make another member "
                      "platform-admin first.")
        rows.append({**m, "you": bool(me_id) and m.get("userId") == me_id, "locked": locked,
                     "manage": can_manage})
    return rows


async def _members_page(w: Any, platform: dict[str, Any], *, status_code: int = 200, error: str | None = None,
                        invited: str = "", form: dict[str, str] | None = None, notice: str = "") -> Response:
    """The members and, for those who may manage them (IAM says: 403 otherwise), the role and removal
    controls, the invite form and the pending invitations."""
    answer = await w.api("GET", f"{IAM}/api/nno/platform-members", params={"platformId": platform["id"]})
    pending = await w.api("GET", INVITATIONS, params={"platformId": platform["id"]})
    rows = _member_rows(_data(answer), platform, await w.me(), pending.ok)
    return w.render("members.html", status_code=status_code, platform=platform, members=rows,
                    error=error or (None if answer.ok else answer.message), can_invite=pending.ok,
                    invitations=_data(pending), roles=PLATFORM_ROLES, invited=invited, form=form or {},
                    notice=notice)


async def _member(w: Any, platform: dict[str, Any], user_id: str) -> dict[str, Any]:
    """One member of the platform as its manager sees it (else the page is not found)."""
    _id(user_id)
    listing = await w.must(await w.api("GET", f"{IAM}/api/nno/platform-members",
                                       params={"platformId": platform["id"]}))
    members = [m for m in listing.get("data", []) if isinstance(m, dict)] if isinstance(listing, dict) else []
    pending = await w.api("GET", INVITATIONS, params={"platformId": platform["id"]})
    for row in _member_rows(members, platform, await w.me(), pending.ok):
        if row.get("userId") == user_id:
            return row
    raise PortalError(_not_found())


def _member_path(platform: dict[str, Any], user_id: str = "") -> str:
    base = f"/platforms/{quote(platform['id'], safe='')}/members"
    return f"{base}/{quote(user_id, safe='')}" if user_id else base


@router.get("/platforms/{platform_id}/members")
async def members(w: WebDep, platform_id: str, invited: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    return await _members_page(w, platform, invited=invited[:320])


@router.post("/platforms/{platform_id}/members/invite")
async def invite_member(w: WebDep, request: Request, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    form = await form_data(request)
    body = {"platformId": platform["id"], "email": form.get("email", ""), "role": form.get("role", "")}
    answer = await w.api("POST", INVITATIONS, json=body)
    if not answer.ok:
        if answer.status == 401:
            await w.must(answer)
        return await _members_page(w, platform, status_code=answer.status, error=answer.message, form=form)
    email = str((answer.data or {}).get("email", ""))
    return redirect(f"/platforms/{quote(platform['id'], safe='')}/members?" + urlencode({"invited": email}),
                    request)


async def _pending_invitation(w: Any, platform: dict[str, Any], invitation_id: str) -> dict[str, Any]:
    """One of the platform's pending invitations, as its manager sees it (else the page is not found)."""
    _id(invitation_id)
    listing = await w.must(await w.api("GET", INVITATIONS, params={"platformId": platform["id"]}))
    for inv in listing.get("data", []) if isinstance(listing, dict) else []:
        if isinstance(inv, dict) and inv.get("id") == invitation_id:
            return inv
    raise PortalError(_not_found())


@router.get("/platforms/{platform_id}/members/invitations/{invitation_id}/cancel")
async def confirm_cancel_invitation(w: WebDep, platform_id: str, invitation_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    inv = await _pending_invitation(w, platform, invitation_id)
    return w.render("invitation_cancel.html", platform=platform, invitation=inv)


@router.post("/platforms/{platform_id}/members/invitations/{invitation_id}/cancel")
async def cancel_invitation(w: WebDep, request: Request, platform_id: str, invitation_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    await w.must(await w.api("DELETE", f"{INVITATIONS}/{_id(invitation_id)}"))
    return redirect(f"/platforms/{quote(platform['id'], safe='')}/members", request)


@router.post("/platforms/{platform_id}/members/{user_id}/role")
async def change_member_role(w: WebDep, request: Request, platform_id: str, user_id: str) -> Response:
    """htmx swaps the member's row (with the outcome in it); a plain form gets the whole page."""
    await w.require_me()
    platform = await _platform(w, platform_id)
    form = await form_data(request)
    answer = await w.api("PATCH", f"{IAM}/api/nno/platform-members/{quote(platform['id'], safe='')}/{_id(user_id)}",
                         json={"role": form.get("role", "")})
    if answer.status == 401:
        await w.must(answer)
    if request.headers.get("hx-request"):
        try:
            member = await _member(w, platform, user_id)
        except PortalError:  # no longer a member (removed meanwhile): show the page as it is now
            return redirect(_member_path(platform), request)
        note = f"Now {answer.data.get('role')}." if answer.ok else None
        return w.render("_member_row.html", status_code=answer.status, platform=platform, m=member,
                        roles=PLATFORM_ROLES, row_error=None if answer.ok else answer.message, row_note=note)
    if not answer.ok:
        return await _members_page(w, platform, status_code=answer.status, error=answer.message)
    return redirect(_member_path(platform), request)


@router.get("/platforms/{platform_id}/members/{user_id}/remove")
async def confirm_remove_member(w: WebDep, platform_id: str, user_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    member = await _member(w, platform, user_id)
    if not member["manage"]:
        raise PortalError(_not_found())
    return w.render("member_remove.html", platform=platform, member=member, consequence=_consequence(member, platform))


def _consequence(member: dict[str, Any], platform: dict[str, Any]) -> str:
    who = "You" if member.get("you") else str(member.get("email") or member.get("userId"))
    return REMOVE_CONSEQUENCE.format(who=who, platform=platform.get("name") or platform["id"])


@router.post("/platforms/{platform_id}/members/{user_id}/remove")
async def remove_member(w: WebDep, request: Request, platform_id: str, user_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    answer = await w.api("DELETE", f"{IAM}/api/nno/platform-members/{quote(platform['id'], safe='')}/{_id(user_id)}")
    if answer.status == 401:
        await w.must(answer)
    if not answer.ok:
        member = await _member(w, platform, user_id)
        return w.render("member_remove.html", status_code=answer.status, platform=platform, member=member,
                        consequence=_consequence(member, platform), error=answer.message)
    if answer.data.get("userId") == (await w.me() or {}).get("userId"):
        return redirect("/platforms", request)  # they left the platform: its pages are no longer theirs
    return redirect(_member_path(platform), request)


# --- API keys -----------------------------------------------------------------------------------

@router.get("/platforms/{platform_id}/keys")
async def keys(w: WebDep, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    answer = await w.must(await w.api("GET", KEYS, params={"platformId": platform_id}))
    rows = answer.get("data", answer) if isinstance(answer, dict) else answer
    return w.render("keys.html", platform=platform, keys=rows if isinstance(rows, list) else [])


@router.post("/platforms/{platform_id}/keys")
async def create_key(w: WebDep, request: Request, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    form = await form_data(request)
    body: dict[str, Any] = {"name": form.get("name", ""), "platformId": platform["id"]}
    days = form.get("expiresInDays", "")
    if days.isdigit() and int(days) > 0:
        body["expiresIn"] = int(days) * 86_400
    answer = await w.api("POST", KEYS, json=body)
    listing = await w.api("GET", KEYS, params={"platformId": platform_id})
    rows = (listing.data or {}).get("data", []) if listing.ok and isinstance(listing.data, dict) else []
    if not answer.ok:
        return w.render("keys.html", status_code=answer.status, platform=platform, keys=rows, error=answer.message)
    return w.render("keys.html", platform=platform, keys=rows, created=answer.data)


@router.post("/platforms/{platform_id}/keys/{key_id}/revoke")
async def revoke_key(w: WebDep, request: Request, platform_id: str, key_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    await w.must(await w.api("DELETE", f"{KEYS}/{_id(key_id)}"))
    return redirect(f"/platforms/{platform['id']}/keys", request)


# --- audit --------------------------------------------------------------------------------------

AUDIT_ACTORS = ("user", "operator", "apikey", "service")
AUDIT_PAGE = 50


@router.get("/platforms/{platform_id}/audit")
async def audit(w: WebDep, platform_id: str, cursor: str = "", action: str = "", actor: str = "") -> Response:
    """The Registry filters (`action` contains, `actorType`), so every page of the answer matches and
    the next-page link carries the filters along."""
    await w.require_me()
    platform = await _platform(w, platform_id)
    action = action.strip()[:64]
    actor = actor if actor in AUDIT_ACTORS else ""
    query = {"limit": AUDIT_PAGE, "cursor": cursor, "action": action, "actorType": actor}
    page = await w.must(await w.api("GET", f"{PLATFORMS}/{platform_id}/audit", params=query))
    rows = [r for r in page.get("data", []) if isinstance(r, dict)]
    nxt = (page.get("pagination") or {}).get("nextCursor")
    more = None
    if nxt:
        keep = {k: v for k, v in (("action", action), ("actor", actor)) if v}
        more = f"/platforms/{quote(platform_id, safe='')}/audit?" + urlencode({"cursor": nxt, **keep})
    return w.render("audit.html", platform=platform, page=page, rows=rows, action=action, actor=actor,
                    actors=AUDIT_ACTORS, cursor=cursor, more=more)
