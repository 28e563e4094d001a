"""Billing: tiers, subscriptions, the local ledger or Stripe, usage metering, quotas and dunning."""
