"""The ledger's arithmetic, property-tested: monthly periods, proration, overage, customer balance."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from nno.billing import ledger
from nno.billing.config import parse_included, parse_overage
from nno.kernel.tiers import DEFAULT_OVERAGE, TIERS, Overage, check_count, limit_error, upgrade_for

MS = st.integers(min_value=946_684_800_000, max_value=4_102_444_800_000)  # 2000..2100


def test_add_month_clamps_like_stripe() -> None:
    jan31 = int(datetime(2027, 1, 31, tzinfo=UTC).timestamp() * 1000)
    feb = ledger.add_month(jan31, 31)
    assert datetime.fromtimestamp(feb / 1000, UTC).date().isoformat() == "2027-02-28"
    assert datetime.fromtimestamp(ledger.add_month(feb, 31) / 1000, UTC).date().isoformat() == "2027-03-31"


@given(MS, st.integers(1, 31))
def test_add_month_lands_on_the_anchor_day_of_the_next_month(start: int, anchor: int) -> None:
    a, b = (datetime.fromtimestamp(x / 1000, UTC) for x in (start, ledger.add_month(start, anchor)))
    assert (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1
    assert b.day == min(anchor, calendar.monthrange(b.year, b.month)[1])
    assert b.time() == a.time()


@given(MS, st.integers(1, 31 * 86_400_000), st.floats(0, 1), st.sampled_from(list(TIERS)), st.sampled_from(list(TIERS)))
def test_proration_is_the_unused_old_and_remaining_new_time(start: int, span: int, frac: float, old: str,
                                                             new: str) -> None:
    end = start + span
    at = start + int(span * frac)
    lines = ledger.proration_lines(TIERS[old], TIERS[new], start, end, at)
    if old == new or at >= end:
        assert lines == []
        return
    credit, charge = (line.amount_cents for line in lines)
    assert -TIERS[old].price_cents <= credit <= 0 <= charge <= TIERS[new].price_cents
    # The net never exceeds the price difference (rounding: a cent each way).
    assert abs((credit + charge) - (TIERS[new].price_cents - TIERS[old].price_cents) * (end - at) / span) <= 1


@given(st.integers(0, 10**12), st.integers(0, 10**10), st.integers(1, 10**9), st.integers(0, 10**4))
def test_overage_charges_every_started_block(qty: int, included: int, block: int, cents: int) -> None:
    amount = ledger.overage_cents(qty, included, Overage(block, cents))
    over = max(0, qty - included)
    assert amount == (0 if over == 0 else ((over + block - 1) // block) * cents)


@given(st.integers(-10**7, 10**7), st.integers(-10**7, 10**7))
def test_balance_is_conserved(subtotal: int, balance: int) -> None:
    due, credit, new_balance = ledger.apply_balance(subtotal, balance)
    assert due >= 0 and credit >= 0
    assert due + new_balance == subtotal + balance  # nothing is lost or made up
    assert due == 0 or new_balance == 0  # credit is used up before anything is charged
    assert credit <= max(0, subtotal)


def test_limits_and_upgrade_paths() -> None:
    assert upgrade_for("starter", "tenants", 4) == "growth"
    assert upgrade_for("starter", "tenants", 21) == "scale"
    assert upgrade_for("scale", "tenants", 10**9) is None
    err = limit_error("growth", "platforms", 3)
    assert (err.status, err.code) == (409, "PLATFORM_LIMIT_REACHED")
    check_count("scale", "features", 10**6)  # unlimited


@given(st.dictionaries(st.sampled_from(list(DEFAULT_OVERAGE)), st.tuples(st.integers(1, 10**9), st.integers(0, 10**6)),
                       max_size=3))
def test_overage_configuration_round_trips(prices: dict[str, tuple[int, int]]) -> None:
    parsed = parse_overage(",".join(f"{m}={b}:{c}" for m, (b, c) in prices.items()))
    for metric, (block, cents) in prices.items():
        assert parsed[metric] == Overage(block, cents)
    assert set(parsed) == set(DEFAULT_OVERAGE)


@given(st.text(max_size=40))
def test_configuration_is_either_refused_or_complete(value: str) -> None:
    try:
        prices = parse_overage(value)
    except ValueError:
        prices = None
    assert prices is None or (set(prices) == set(DEFAULT_OVERAGE) and all(p.block > 0 for p in prices.values()))
    try:
        tiers = parse_included(value)
    except ValueError:
        tiers = None
    assert tiers is None or set(tiers) == set(TIERS)
