"""`nno billing plan|usage|invoices|change-tier|cancel` against a live server (local provider)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.cli.conftest import assert_clean_failure, login_new_user, make_active, parse_json


def _subscribed(live_server: Any, owner_id: str, tier: str = "starter") -> str:
    http, service = live_server.http, live_server.service()
    resp = http.post("/api/v1/platforms", headers=service,
                     json={"name": "Billed", "slug": f"billed-{uuid.uuid4().hex[:8]}", "tier": tier,
                           "ownerUserId": owner_id})
    assert resp.status_code == 201, resp.text
    pid = str(resp.json()["id"])
    make_active(live_server, pid)
    started = http.post("/api/v1/billing/customers", headers=service, json={"platformId": pid, "tier": tier})
    assert started.status_code == 201, started.text
    return pid


def test_plan_usage_invoices_change_tier_and_cancel(live_server, nno):
    owner = login_new_user(live_server, nno, f"payer-{uuid.uuid4().hex[:6]}@example.com")
    pid = _subscribed(live_server, owner["user"]["id"])

    plan = parse_json(nno("billing", "plan", "-p", pid, "--json"))
    assert plan["subscription"]["tier"] == "starter" and plan["subscription"]["status"] == "active"
    assert [p["priceCents"] for p in plan["plans"]] == [4900, 19900, 79900]
    human = nno("billing", "plan", "-p", pid)
    assert human.exit_code == 0 and "$49.00" in human.stdout and "unlimited" in human.stdout

    usage = parse_json(nno("billing", "usage", "-p", pid, "--json"))
    assert {m["metric"] for m in usage["metrics"]} >= {"worker_invocations", "d1_rows_read", "kv_writes"}
    assert nno("billing", "usage", "-p", pid).exit_code == 0

    invoices = parse_json(nno("billing", "invoices", "-p", pid, "--json"))
    assert [(i["reason"], i["amountDueCents"]) for i in invoices["data"]] == [("subscription_create", 4900)]

    preview = parse_json(nno("billing", "change-tier", "growth", "-p", pid, "--preview", "--json"))
    assert preview["toTier"] == "growth" and len(preview["lines"]) == 2
    shown = nno("billing", "change-tier", "growth", "-p", pid, "--preview")
    assert shown.exit_code == 0 and "--at " in shown.stdout
    # A date after the period's start but in the future is refused and changes nothing.
    assert assert_clean_failure(nno("billing", "change-tier", "growth", "-p", pid,
                                    "--at", str(preview["prorationDate"] + 10**10)), exit_code=1)
    changed = parse_json(nno("billing", "change-tier", "growth", "-p", pid,
                             "--at", str(preview["prorationDate"]), "--json"))
    assert changed["tier"] == "growth"
    charged = parse_json(nno("billing", "invoices", "-p", pid, "--json"))["data"][0]
    assert charged["reason"] == "subscription_update" and charged["amountDueCents"] == preview["amountDueNowCents"]
    assert assert_clean_failure(nno("billing", "change-tier", "platinum", "-p", pid), exit_code=2)

    cancelled = parse_json(nno("billing", "cancel", "-p", pid, "--yes", "--json"))
    assert cancelled["state"] == "pending_cancellation"
    shown = live_server.http.get(f"/api/v1/platforms/{pid}", headers=live_server.service()).json()
    assert shown["status"] == "pending_cancellation"


def test_another_platforms_billing_is_not_found(live_server, nno):
    other = login_new_user(live_server, nno, f"other-{uuid.uuid4().hex[:6]}@example.com")
    theirs = _subscribed(live_server, other["user"]["id"])
    login_new_user(live_server, nno, f"nosy-{uuid.uuid4().hex[:6]}@example.com")
    for args in (("plan",), ("usage",), ("invoices",), ("cancel", "--yes"), ("change-tier", "scale")):
        message = assert_clean_failure(nno("billing", *args, "-p", theirs), exit_code=1)
        assert "not" in message.lower()


def test_missed_payment_suspends_and_paying_restores(live_server, nno):
    owner = login_new_user(live_server, nno, f"late-{uuid.uuid4().hex[:6]}@example.com")
    pid = _subscribed(live_server, owner["user"]["id"])
    operator = {"NNO_API_TOKEN": live_server.settings.auth_api_key}
    assert nno("billing", "payment-method", "-p", pid, "--fails", env=operator).exit_code == 0
    # Not the owner's to make fail, nor to move the clock.
    assert_clean_failure(nno("billing", "payment-method", "-p", pid, "--fails"), exit_code=4)
    assert_clean_failure(nno("billing", "advance-clock", "--days", "1"), exit_code=4)
    parse_json(nno("billing", "advance-clock", "--days", "31", "--json", env=operator))
    parse_json(nno("billing", "advance-clock", "--days", "8", "--json", env=operator))  # past the 7-day grace
    shown = live_server.http.get(f"/api/v1/platforms/{pid}", headers=live_server.service()).json()
    assert shown["status"] == "suspended"
    invoice = parse_json(nno("billing", "invoices", "-p", pid, "--json"))["data"][0]
    assert invoice["status"] == "open"
    assert_clean_failure(nno("billing", "pay", invoice["id"], "-p", pid), exit_code=1)  # still declined
    assert nno("billing", "payment-method", "-p", pid, "--works").exit_code == 0
    shown = live_server.http.get(f"/api/v1/platforms/{pid}", headers=live_server.service()).json()
    assert shown["status"] == "active"
    assert parse_json(nno("billing", "invoices", "-p", pid, "--json"))["data"][0]["status"] == "paid"
