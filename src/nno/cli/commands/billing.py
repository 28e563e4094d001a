"""`nno billing plan|usage|invoices|change-tier|cancel` (Billing: /api/v1/billing)."""

from __future__ import annotations

from typing import Any

import typer

from nno.cli.commands import cursor_option, json_option, limit_option, new_app, platform_option, state

app = new_app("Billing of a platform: plan, usage, invoices, change-tier, cancel.")

BILLING = "/api/v1/billing"
TIERS = ("starter", "growth", "scale")


def _money(cents: Any) -> str:
    return f"${int(cents) / 100:,.2f}" if isinstance(cents, int) else "-"


def _limit(value: Any) -> str:
    return "unlimited" if value is None else str(value)


def _percent(metric: dict[str, Any]) -> str:
    return "-" if metric.get("percent") is None else f"{metric['percent']:.1f}%"


@app.command("plan")
def plan(ctx: typer.Context, platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """The platform's subscription and the tiers it can move to."""
    from nno.cli.output import print_json, record, table, when

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        sub = client.get(f"{BILLING}/subscription", params={"platformId": platform_id})
        plans = client.get(f"{BILLING}/plans").get("data", [])
    if as_json:
        print_json({"subscription": sub, "plans": plans})
        return
    if not sub:
        record([("Platform", platform_id), ("Subscription", "none")])
    else:
        record([("Platform", platform_id), ("Tier", sub.get("tier")), ("Status", sub.get("state")),
                ("Period", f"{when(sub.get('currentPeriodStart'))} → {when(sub.get('currentPeriodEnd'))}"),
                ("Trial ends", when(sub.get("trialEnd")) if sub.get("trialEnd") else "-")], title="Subscription")
    table([("TIER", lambda p: p["tier"]), ("PRICE/MONTH", lambda p: _money(p["priceCents"])),
           ("PLATFORMS", lambda p: _limit(p["limits"]["platforms"])),
           ("TENANTS", lambda p: _limit(p["limits"]["tenants"])),
           ("FEATURES", lambda p: _limit(p["limits"]["features"]))], plans, title="Plans")


@app.command("usage")
def usage(ctx: typer.Context, platform: str | None = platform_option(),
          by_tenant: bool = typer.Option(False, "--by-tenant", help="Break usage down per tenant."),
          as_json: bool = json_option()) -> None:
    """This period's usage against what the tier includes."""
    from nno.cli.output import print_json, table, when

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        result = client.get(f"{BILLING}/usage", params={"platformId": platform_id, "byTenant": by_tenant})
    if as_json:
        print_json(result)
        return
    table([("METRIC", lambda m: m["metric"]), ("USED", lambda m: f"{m['used']:,}"),
           ("INCLUDED", lambda m: f"{m['included']:,}"), ("%", _percent),
           ("OVERAGE", lambda m: _money(m["overageCents"]))], result.get("metrics", []),
          title=f"{platform_id} ({result.get('tier')}) since {when(result.get('periodStart'))}")
    if by_tenant:
        for tenant in result.get("tenants", []):
            rows = [{"metric": m, "used": q} for m, q in sorted(tenant["usage"].items())]
            table([("METRIC", lambda row: row["metric"]), ("USED", lambda row: f"{row['used']:,}")],
                  rows, title=f"tenant {tenant.get('tenantId') or '(platform)'}")


@app.command("invoices")
def invoices(ctx: typer.Context, platform: str | None = platform_option(), limit: int = limit_option(),
             cursor: str | None = cursor_option(), as_json: bool = json_option()) -> None:
    """The platform's invoices, newest first."""
    from nno.cli.output import field, page, when

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        result = client.get(f"{BILLING}/invoices", params={"platformId": platform_id, "limit": limit,
                                                           "cursor": cursor})
    columns = [("ID", field("id")), ("REASON", field("reason")), ("STATUS", field("status")),
               ("DUE", lambda i: _money(i.get("amountDueCents"))), ("PAID", lambda i: _money(i.get("amountPaidCents"))),
               ("ATTEMPTS", field("attemptCount")), ("CREATED", field("createdAt", when))]
    page(result, columns, result.get("data", []), as_json=as_json, empty=f"No invoices for platform {platform_id}.")


@app.command("change-tier")
def change_tier(ctx: typer.Context, tier: str = typer.Argument(..., help="starter, growth or scale."),
                platform: str | None = platform_option(),
                preview: bool = typer.Option(False, "--preview", help="Show the proration only; change nothing."),
                at: int | None = typer.Option(None, "--at", min=0,
                                              help="A preview's proration date: charge exactly what it showed."),
                as_json: bool = json_option()) -> None:
    """Upgrade or downgrade (prorated); the new tier's limits apply at once."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import info, print_json, success, table

    if tier not in TIERS:
        raise CLIError(f"unknown tier {tier!r}", hint="Use starter, growth or scale.", exit_code=ExitCode.USAGE)
    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        if preview:
            result = client.get(f"{BILLING}/subscription/proration-preview",
                                params={"platformId": platform_id, "tier": tier})
        else:
            body: dict[str, object] = {"tier": tier}
            if at is not None:
                body["prorationDate"] = at
            result = client.post(f"{BILLING}/subscription/change-tier", params={"platformId": platform_id},
                                 json=body)
    if as_json:
        print_json(result)
    elif preview:
        table([("LINE", lambda x: x["description"]), ("AMOUNT", lambda x: _money(x["amountCents"]))],
              result.get("lines", []), title=f"{result.get('fromTier')} → {tier}")
        success(f"Due now {_money(result.get('amountDueNowCents'))}, credit {_money(result.get('creditCents'))}")
        # The proration moves with the clock; the date pins the charge to what was just shown.
        info(f"To be charged exactly this: nno billing change-tier {tier} -p {platform_id} "
             f"--at {result.get('prorationDate')}")
    else:
        success(f"Platform {platform_id} is now on {result.get('tier')}")


@app.command("cancel")
def cancel(ctx: typer.Context, platform: str | None = platform_option(),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
           as_json: bool = json_option()) -> None:
    """Cancel at the end of the current period (the platform then becomes cancelled)."""
    from nno.cli.errors import CLIError, ExitCode
    from nno.cli.output import print_json, success, when

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    if not yes and not typer.confirm(f"Cancel the subscription of {platform_id} at the period's end?"):
        raise CLIError("not cancelled", exit_code=ExitCode.ERROR)
    with st.client() as client:
        result = client.post(f"{BILLING}/subscription/cancel", params={"platformId": platform_id})
    if as_json:
        print_json(result)
    else:
        success(f"Subscription of {platform_id} ends {when(result.get('currentPeriodEnd'))}")


@app.command("pay")
def pay(ctx: typer.Context, invoice: str = typer.Argument(..., help="The open invoice's id."),
        platform: str | None = platform_option(), as_json: bool = json_option()) -> None:
    """Pay an open invoice now with the platform's payment method (local provider)."""
    from nno.cli.output import print_json, success

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        result = client.post(f"{BILLING}/invoices/{invoice}/pay", params={"platformId": platform_id})
    if as_json:
        print_json(result)
    else:
        success(f"Invoice {invoice} paid: {_money(result.get('amountPaidCents'))}")


@app.command("payment-method")
def payment_method(ctx: typer.Context, platform: str | None = platform_option(),
                   fails: bool = typer.Option(..., "--fails/--works",
                                              help="A declining card (operators) or a working one (retries "
                                                   "the open invoices at once)."),
                   as_json: bool = json_option()) -> None:
    """The local provider's payment method of a platform."""
    from nno.cli.output import print_json, success

    st = state(ctx)
    platform_id = st.resolved_platform_id(platform, suspended_ok=True)
    with st.client() as client:
        result = client.request("PUT", f"{BILLING}/payment-method", json={"platformId": platform_id, "fails": fails})
    if as_json:
        print_json(result)
    else:
        success(f"Payment method of {platform_id} now {'declines' if fails else 'works'}")


@app.command("advance-clock")
def advance_clock(ctx: typer.Context, days: float = typer.Option(..., "--days", min=0.0001,
                                                                 help="How far to move billing time."),
                  as_json: bool = json_option()) -> None:
    """Operators: move the local provider's clock forward, then run what became due (period ends,
    payment retries, dunning)."""
    from nno.cli.output import print_json, success

    st = state(ctx)
    with st.client() as client:
        result = client.post(f"{BILLING}/test-clock/advance", json={"seconds": max(1, int(days * 86_400))})
    if as_json:
        print_json(result)
    else:
        success(f"Billing clock advanced {days:g} days; ran: {result.get('ran')}")
