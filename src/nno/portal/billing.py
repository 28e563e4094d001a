"""Billing pages: the plan (change tier or cancel, each behind a confirmation that shows what it
costs), usage against the tier's included amounts, and invoices. The Billing routes `nno billing`
uses (`/api/v1/billing/...`, docs/billing.md); Billing decides who may read and who may change."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nno.portal.gateway_client import Answer
from nno.portal.platforms import TIERS, _data, _id, _not_found, _platform
from nno.portal.web import PortalError, Web, WebDep, form_data, redirect

router = APIRouter()
BILLING = "/api/v1/billing"
INVOICE_PAGES = 10  # Billing has no single-invoice route: an invoice is looked for in this many pages


def unavailable(answer: Answer) -> bool:
    """The gateway's answer for a service that is not deployed (404 naming the service)."""
    details = answer.error.get("details")
    return answer.status == 404 and isinstance(details, dict) and details.get("service") == "billing"


def _base(platform: dict[str, Any]) -> str:
    return f"/platforms/{quote(platform['id'], safe='')}/billing"


async def _get(w: Web, path: str, platform_id: str, **params: Any) -> Answer:
    answer: Answer = await w.api("GET", f"{BILLING}{path}", params={"platformId": platform_id, **params})
    if answer.status == 401:
        await w.must(answer)
    return answer


@router.get("/platforms/{platform_id}/billing")
async def plan(w: WebDep, platform_id: str, changed: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    sub = await _get(w, "/subscription", platform["id"])
    if unavailable(sub):
        return w.render("billing.html", platform=platform, available=False, tab="plan")
    plans = await w.api("GET", f"{BILLING}/plans")
    return w.render("billing.html", platform=platform, available=True, tab="plan",
                    subscription=sub.data if sub.ok else None, plans=_data(plans),
                    error=None if sub.ok else sub.message, changed=changed)


@router.get("/platforms/{platform_id}/billing/change-tier")
async def confirm_change_tier(w: WebDep, platform_id: str, tier: str = "") -> Response:
    await w.require_me()
    if tier not in TIERS:
        raise PortalError(_not_found())
    platform = await _platform(w, platform_id)
    preview = await w.must(await _get(w, "/subscription/proration-preview", platform["id"], tier=tier))
    return w.render("billing_confirm.html", platform=platform, action="change-tier", tier=tier, preview=preview)


@router.post("/platforms/{platform_id}/billing/change-tier")
async def change_tier(w: WebDep, request: Request, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    tier = (await form_data(request)).get("tier")
    if tier not in TIERS:
        raise PortalError(Answer(400, {"error": {"code": "VALIDATION_ERROR", "message": "Choose a tier: "
                                                 + ", ".join(TIERS)}}))
    await w.must(await w.api("POST", f"{BILLING}/subscription/change-tier",
                             params={"platformId": platform["id"]}, json={"tier": tier}))
    return redirect(f"{_base(platform)}?changed=tier", request)


@router.get("/platforms/{platform_id}/billing/cancel")
async def confirm_cancel(w: WebDep, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    sub = await w.must(await _get(w, "/subscription", platform["id"]))
    return w.render("billing_confirm.html", platform=platform, action="cancel", subscription=sub or {})


@router.post("/platforms/{platform_id}/billing/cancel")
async def cancel(w: WebDep, request: Request, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    await w.must(await w.api("POST", f"{BILLING}/subscription/cancel", params={"platformId": platform["id"]},
                             json={}))
    return redirect(f"{_base(platform)}?changed=cancel", request)


@router.get("/platforms/{platform_id}/billing/usage")
async def usage(w: WebDep, platform_id: str) -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    answer = await _get(w, "/usage", platform["id"])
    if unavailable(answer):
        return w.render("billing.html", platform=platform, available=False, tab="usage")
    return w.render("billing_usage.html", platform=platform, tab="usage", usage=answer.data if answer.ok else None,
                    error=None if answer.ok else answer.message)


@router.get("/platforms/{platform_id}/billing/invoices")
async def invoices(w: WebDep, platform_id: str, cursor: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    answer = await _get(w, "/invoices", platform["id"], limit=25, cursor=cursor)
    if unavailable(answer):
        return w.render("billing.html", platform=platform, available=False, tab="invoices")
    page = answer.data if answer.ok and isinstance(answer.data, dict) else {}
    return w.render("billing_invoices.html", platform=platform, tab="invoices", invoices=_data(answer), page=page,
                    cursor=cursor, error=None if answer.ok else answer.message)


@router.get("/platforms/{platform_id}/billing/invoices/{invoice_id}")
async def invoice(w: WebDep, platform_id: str, invoice_id: str, paid: str = "") -> Response:
    await w.require_me()
    platform = await _platform(w, platform_id)
    wanted = _id(invoice_id)
    cursor = ""
    for _ in range(INVOICE_PAGES):
        page = await w.must(await _get(w, "/invoices", platform["id"], limit=100, cursor=cursor))
        found = next((i for i in page.get("data", []) if isinstance(i, dict) and i.get("id") == wanted), None)
        if found is not None:
            return w.render("billing_invoice.html", platform=platform, tab="invoices", invoice=found,
                            paid=paid == "1")
        cursor = (page.get("pagination") or {}).get("nextCursor") or ""
        if not cursor:
            break
    raise PortalError(Answer(404, {"error": {"code": "INVOICE_NOT_FOUND", "message": "There is no such invoice."}}))


@router.post("/platforms/{platform_id}/billing/invoices/{invoice_id}/pay")
async def pay(w: WebDep, request: Request, platform_id: str, invoice_id: str) -> Response:
    """Charge an open invoice now (the local provider; Billing answers 402 when the card declines)."""
    await w.require_me()
    platform = await _platform(w, platform_id)
    await w.must(await w.api("POST", f"{BILLING}/invoices/{_id(invoice_id)}/pay",
                             params={"platformId": platform["id"]}, json={}))
    return redirect(f"{_base(platform)}/invoices/{invoice_id}?paid=1", request)


@router.post("/platforms/{platform_id}/billing/payment-method")
async def working_card(w: WebDep, request: Request, platform_id: str) -> Response:
    """The local provider's card made a working one: Billing retries the open invoices at once."""
    await w.require_me()
    platform = await _platform(w, platform_id)
    await w.must(await w.api("PUT", f"{BILLING}/payment-method", json={"platformId": platform["id"], "fails": False}))
    back = (await form_data(request)).get("invoice", "")
    target = f"{_base(platform)}/invoices/{_id(back)}?paid=1" if back else f"{_base(platform)}/invoices"
    return redirect(target, request)
