"""The Registry: NNO's single source of truth for platforms, tenants, stacks, resources, features,
lifecycle, onboarding and the platform audit log."""
