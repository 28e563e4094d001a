"""The Members Worker: pages over the auth Worker's organization and platform-role API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response

from nno.sdk import FeatureEnv, FeatureUser, create_feature_app, current_user, render, require_tenant

ORG = "/api/auth/organization"
ROLES = ("member", "admin", "owner")
Reader = Annotated[FeatureUser, Depends(require_tenant("members:read"))]
Manager = Annotated[FeatureUser, Depends(require_tenant("members:manage"))]
SignedIn = Annotated[FeatureUser, Depends(current_user)]


def _message(body: Any, status: int) -> str:
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    return f"The auth service answered {status}"


def create_worker_app(env: FeatureEnv) -> FastAPI:
    from nno_feature_members import definition

    app = create_feature_app(definition, env)
    auth = env.auth
    assert auth is not None

    async def org_page(request: Request, user: FeatureUser, *, error: str | None = None,
                       notice: str | None = None, status: int = 200) -> Response:
        org = user.active_organization_id
        full = await auth.request("GET", f"{ORG}/get-full-organization?organizationId={org}", token=user.token)
        members = await auth.request("GET", f"{ORG}/list-members?organizationId={org}", token=user.token)
        invitations = await auth.request("GET", f"{ORG}/list-invitations?organizationId={org}", token=user.token)
        pending = [i for i in (invitations.json() or []) if isinstance(i, dict) and i.get("status") == "pending"] \
            if invitations.ok else []
        ctx = {"org": full.json() if full.ok else {"id": org}, "members": (members.json() or {}).get("members", [])
               if members.ok else [], "invitations": pending, "roles": ROLES, "error": error, "notice": notice}
        return render(request, "members/members.html", ctx, status_code=status)

    async def act(request: Request, user: FeatureUser, path: str, body: dict[str, Any], done: str) -> Response:
        resp = await auth.request("POST", f"{ORG}/{path}", token=user.token,
                                  json={**body, "organizationId": user.active_organization_id})
        if not resp.ok:
            return await org_page(request, user, error=_message(resp.json(), resp.status),
                                  status=resp.status if 400 <= resp.status < 500 else 502)
        if request.headers.get("hx-request") == "true":
            return await org_page(request, user, notice=done)
        return RedirectResponse("/", status_code=303)

    @app.get("/")
    async def members_page(request: Request, user: Reader) -> Response:
        return await org_page(request, user)

    @app.post("/invite")
    async def invite(request: Request, user: Manager, email: Annotated[str, Form()] = "",
                     role: Annotated[str, Form()] = "member") -> Response:
        return await act(request, user, "invite-member", {"email": email.strip(), "role": role},
                         f"Invitation sent to {email.strip()}")

    @app.post("/members/{member_id}/role")
    async def change_role(request: Request, member_id: str, user: Manager,
                          role: Annotated[str, Form()] = "") -> Response:
        return await act(request, user, "update-member-role", {"memberId": member_id, "role": role}, "Role changed")

    @app.post("/members/{member_id}/remove")
    async def remove(request: Request, member_id: str, user: Manager) -> Response:
        return await act(request, user, "remove-member", {"memberIdOrEmail": member_id}, "Member removed")

    @app.post("/invitations/{invitation_id}/cancel")
    async def cancel(request: Request, invitation_id: str, user: Manager) -> Response:
        return await act(request, user, "cancel-invitation", {"invitationId": invitation_id}, "Invitation cancelled")

    @app.get("/invitations")
    async def my_invitations(request: Request, user: SignedIn) -> Response:
        resp = await auth.request("GET", f"{ORG}/list-user-invitations", token=user.token)
        pending = [i for i in (resp.json() or []) if i.get("status") == "pending"] if resp.ok else []
        return render(request, "members/invitations.html", {"invitations": pending, "error": None})

    @app.post("/invitations/{invitation_id}/{answer}")
    async def answer_invitation(request: Request, invitation_id: str, answer: str, user: SignedIn) -> Response:
        if answer not in ("accept", "reject"):
            return render(request, "nno/error.html", {"status": 404, "code": "NOT_FOUND", "message": "No such action"},
                          status_code=404)
        resp = await auth.request("POST", f"{ORG}/{answer}-invitation", token=user.token,
                                  json={"invitationId": invitation_id})
        if not resp.ok:
            return render(request, "members/invitations.html", {"invitations": [],
                                                                "error": _message(resp.json(), resp.status)},
                          status_code=resp.status if 400 <= resp.status < 500 else 502)
        if answer == "accept":
            org = (resp.json() or {}).get("member", {}).get("organizationId") or (resp.json() or {}).get(
                "organizationId")
            if org:
                await auth.request("POST", f"{ORG}/set-active", token=user.token, json={"organizationId": org})
        return RedirectResponse("/" if answer == "accept" else "/invitations", status_code=303)

    async def platform_page(request: Request, user: FeatureUser, error: str | None = None,
                            status: int = 200) -> Response:
        admins = await auth.request("GET", "/api/nno/platform-admins", token=user.token)
        catalogue = await auth.request("GET", "/api/nno/feature-permissions", token=user.token)
        return render(request, "members/platform.html", {
            "admins": (admins.json() or {}).get("data", []) if admins.ok else [],
            "permissions": (catalogue.json() or {}).get("data", []) if catalogue.ok else [], "error": error},
            status_code=status)

    @app.get("/platform")
    async def platform(request: Request, user: SignedIn) -> Response:
        if not user.is_platform_admin:
            return render(request, "nno/error.html", {"status": 403, "code": "FORBIDDEN",
                                                      "message": "Only the platform's admins see this"},
                          status_code=403)
        return await platform_page(request, user)

    @app.post("/platform/role")
    async def set_platform_role(request: Request, user: SignedIn, email: Annotated[str, Form()] = "",
                                role: Annotated[str, Form()] = "") -> Response:
        if not user.is_platform_admin:
            return render(request, "nno/error.html", {"status": 403, "code": "FORBIDDEN",
                                                      "message": "Only the platform's admins may do this"},
                          status_code=403)
        ref = email.strip()
        if not ref or "/" in ref:
            return await platform_page(request, user, "Name the user by email", 400)
        resp = await auth.request("PUT", f"/api/nno/users/{ref}/role", token=user.token, json={"role": role})
        if not resp.ok:
            return await platform_page(request, user, _message(resp.json(), resp.status),
                                       resp.status if 400 <= resp.status < 500 else 502)
        return RedirectResponse("/platform", status_code=303)

    return app
