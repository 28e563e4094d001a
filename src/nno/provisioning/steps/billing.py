"""The billing customer of a new platform (provisioning-stacks.md: a platform's minimal footprint is
"auth Worker + registry record + billing customer"). Billing creates the customer and subscription
(a trial when configured) and fills the platform's `stripeCustomerId`/`trialEndsAt` in the Registry.

Run by `mark_platform_active` just before the platform goes live, so the documented step list stays
as it is. Idempotent: Billing answers with the existing subscription when there is one. Without a
Billing service in this installation it is skipped.
"""

from __future__ import annotations

from typing import Any

from nno.kernel.bindings import UpstreamError
from nno.kernel.identity import SERVICE_IDENTITY
from nno.provisioning.errors import StepError
from nno.provisioning.registry_client import error_code
from nno.provisioning.steps.base import StepContext


async def ensure_billing_customer(sctx: StepContext, platform: dict[str, Any]) -> dict[str, Any]:
    billing = sctx.ctx.bindings.get("billing")
    if billing is None:
        return {"billing": "not deployed"}
    body: dict[str, Any] = {"platformId": sctx.platform_id,
                            "tier": sctx.payload.get("planTier") or platform.get("tier") or "starter"}
    if sctx.payload.get("billingEmail"):
        body["email"] = sctx.payload["billingEmail"]
    try:
        resp = await billing.request("POST", "/customers", json=body, headers=SERVICE_IDENTITY.to_headers())
    except UpstreamError as exc:
        raise StepError(f"Billing unreachable: {exc}", code="BILLING_UNAVAILABLE") from exc
    if not resp.ok:
        code, message = error_code(resp)
        raise StepError(f"Billing answered {resp.status} {code}: {message}", code=f"BILLING_{code}",
                        retryable=resp.status >= 500 or resp.status == 429)
    sub = resp.json()
    return {"billing": {"customerId": sub.get("customerId"), "subscriptionId": sub.get("id"),
                        "status": sub.get("status"), "trialEnd": sub.get("trialEnd")}}
