"""The page a platform invitation's mail links to: the signed-in invitee, whose address IAM must know
as proven, sees what they are invited to and accepts it (`/api/nno/platform-invitations`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.web import IAM, WebDep, form_data

router = APIRouter()
INVITATIONS = f"{IAM}/api/nno/platform-invitations"
TOKEN_MAX = 512


def _token_error(w: Any, token: str) -> Response | None:
    if not token or len(token) > TOKEN_MAX:
        return w.render("invitation_accept.html", status_code=400, token="", invitation=None,
                        error="This invitation link is incomplete: open the link from the mail again.")
    return None


def _page(w: Any, status_code: int, token: str, error: str, code: str) -> Response:
    # Proving the address is done by a magic link, which brings the invitee back here.
    prove = "/sign-in?next=" + quote("/invitations/accept?token=" + quote(token, safe=""), safe="")
    return w.render("invitation_accept.html", status_code=status_code, token=token, invitation=None, error=error,
                    prove=prove if code == "EMAIL_NOT_VERIFIED" else None)


async def _call(w: Any, action: str, token: str) -> tuple[Any, Response | None]:
    """IAM's answer to `action` on the invitation, or the page that says why there is none."""
    await w.require_me()
    bad = _token_error(w, token)
    if bad is not None:
        return None, bad
    answer = await w.api("POST", f"{INVITATIONS}/{action}", json={"token": token})
    if answer.ok:
        return answer, None
    if answer.status == 401:
        await w.must(answer)
    return None, _page(w, answer.status, token, answer.message, str(answer.error.get("code", "")))


@router.get("/invitations/accept")
async def accept_page(w: WebDep, token: str = "") -> Response:
    answer, page = await _call(w, "lookup", token)
    if page is not None:
        return page
    return w.render("invitation_accept.html", token=token, invitation=answer.data)


@router.post("/invitations/accept")
async def accept(w: WebDep, request: Request) -> Response:
    answer, page = await _call(w, "accept", (await form_data(request)).get("token", ""))
    if page is not None:
        return page
    data = answer.data if isinstance(answer.data, dict) else {}
    return w.render("invitation_accept.html", token="", invitation=data.get("invitation"), accepted=True,
                    member=data.get("member"))
