"""Stripe webhooks: the signature is checked with the signing secret (Stripe's own verifier: a bad
signature or a timestamp outside its tolerance, i.e. a replay, is refused), each event id is applied
once, and an event older than the last one applied to a subscription does not overwrite it.
"""

from __future__ import annotations

from typing import Any

import stripe
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from nno.billing.models import ProviderEvent, Subscription
from nno.billing.service import SYSTEM, BillingService, Effects
from nno.billing.stripe_provider import STATUS_MAP
from nno.kernel.clock import now_ms
from nno.kernel.errors import NNOError

log = structlog.get_logger("nno.billing.webhooks")

TOLERANCE_S = 300


def verify(payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    if not secret:
        raise NNOError(400, "WEBHOOK_NOT_CONFIGURED", "No Stripe webhook signing secret is configured")
    if not signature:
        raise NNOError(400, "INVALID_SIGNATURE", "Missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature, secret, tolerance=TOLERANCE_S)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise NNOError(400, "INVALID_SIGNATURE", "The Stripe signature does not verify") from exc
    data: dict[str, Any] = event.to_dict()
    return data


def _period(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        items = (obj.get("items") or {}).get("data") or []
        value = items[0].get(key) if items else None
    return int(value) * 1000 if value is not None else None


def _tier(svc: BillingService, obj: dict[str, Any]) -> str | None:
    by_price = {v: k for k, v in svc.settings.stripe_price_ids.items()}
    for item in (obj.get("items") or {}).get("data") or []:
        tier = by_price.get(((item.get("price") or {}).get("id")) or "")
        if tier:
            return tier
    meta = (obj.get("metadata") or {}).get("tier")
    return meta if meta in svc.tiers else None


async def handle_stripe_webhook(svc: BillingService, payload: bytes, signature: str | None) -> dict[str, Any]:
    event = verify(payload, signature, svc.settings.stripe_webhook_secret)
    event_id, kind = str(event.get("id")), str(event.get("type"))
    created = int(event.get("created") or 0) * 1000
    obj: dict[str, Any] = (event.get("data") or {}).get("object") or {}
    sub_id = obj.get("subscription") if kind.startswith("invoice.") else obj.get("id")
    if isinstance(sub_id, dict):
        sub_id = sub_id.get("id")
    effects = Effects()
    try:
        async with svc.db.session() as s:
            s.add(ProviderEvent(id=event_id, type=kind, created=created, received_at=now_ms()))
            await s.flush()
            sub = (await s.execute(select(Subscription).where(Subscription.id == str(sub_id or ""))
                                   .with_for_update())).scalar_one_or_none()
            if sub is None:
                return {"received": True, "applied": False}
            if kind == "invoice.payment_failed":
                svc.mark_past_due(s, sub, created)
                svc._audit(s, sub.platform_id, SYSTEM, "invoice.payment_failed", {"invoiceId": obj.get("id")})
            elif kind in ("invoice.paid", "invoice.payment_succeeded"):
                svc._audit(s, sub.platform_id, SYSTEM, "invoice.paid", {"invoiceId": obj.get("id")})
                await svc.settle_if_paid_up(s, sub, created, effects)
            elif kind in ("customer.subscription.updated", "customer.subscription.deleted",
                          "customer.subscription.created"):
                if sub.provider_event_at is not None and created < sub.provider_event_at:
                    return {"received": True, "applied": False, "stale": True}
                sub.provider_event_at = created
                status = "canceled" if kind.endswith("deleted") else STATUS_MAP.get(str(obj.get("status")),
                                                                                    sub.status)
                sub.cancel_at_period_end = bool(obj.get("cancel_at_period_end", sub.cancel_at_period_end))
                sub.current_period_start = _period(obj, "current_period_start") or sub.current_period_start
                sub.current_period_end = _period(obj, "current_period_end") or sub.current_period_end
                sub.tier = _tier(svc, obj) or sub.tier
                if status == "past_due":
                    svc.mark_past_due(s, sub, created)
                elif status == "active" and sub.status == "past_due":
                    await svc.settle_if_paid_up(s, sub, created, effects)
                elif status == "canceled" and sub.status != "canceled":
                    sub.status = "canceled"
                    sub.canceled_at = created
                    sub.registry_pending = "period_end"
                    effects.lifecycle.append((sub.platform_id, "period_end"))
                    svc._audit(s, sub.platform_id, SYSTEM, "subscription.ended", {"at": created})
                else:
                    sub.status = status
                sub.updated_at = now_ms()
    except IntegrityError:
        return {"received": True, "duplicate": True}
    await svc._after(effects)
    return {"received": True, "applied": True}
