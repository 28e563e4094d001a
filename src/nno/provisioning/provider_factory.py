"""Picks the cloud provider named by `settings.provider` (`local` by default, or `cloudflare`).

A provider module `nno.provisioning.providers.<name>` exposes `create_provider(ctx) -> Provider`
(see providers/base.py). It is imported lazily, on the first step that needs it, so a core without
the provider still starts; a step that needs a missing provider fails with a clear, non-retryable
error instead of pretending to succeed.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, cast

from nno.kernel.service import ServiceContext
from nno.provisioning.errors import StepError
from nno.provisioning.providers.base import Provider

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CACHE_KEY = "provisioning.provider"


def get_provider(ctx: ServiceContext) -> Provider:
    cached = ctx.extras.get(_CACHE_KEY)
    if cached is not None:
        return cast(Provider, cached)
    name = ctx.settings.provider
    if not _NAME_RE.match(name):
        raise StepError(f"NNO_PROVIDER={name!r} is not a provider name", code="PROVIDER_UNAVAILABLE",
                        retryable=False)
    module_name = f"nno.provisioning.providers.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise StepError(
                f"provider {name!r} is not available: module {module_name} does not exist",
                code="PROVIDER_UNAVAILABLE", retryable=False,
            ) from exc
        raise
    factory: Any = getattr(module, "create_provider", None)
    if factory is None:
        raise StepError(f"{module_name} defines no create_provider(ctx)", code="PROVIDER_UNAVAILABLE",
                        retryable=False)
    provider = factory(ctx)
    ctx.extras[_CACHE_KEY] = provider
    return cast(Provider, provider)


def set_provider(ctx: ServiceContext, provider: Provider) -> None:
    """Install a provider instance explicitly (used by tests and by embedders)."""
    ctx.extras[_CACHE_KEY] = provider


async def close_provider(ctx: ServiceContext) -> None:
    """Release the provider's resources (connections, files) at shutdown, if it holds any."""
    provider = ctx.extras.pop(_CACHE_KEY, None)
    close = getattr(provider, "close", None)
    if close is not None:
        await close()
