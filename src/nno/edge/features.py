"""Hosting a feature package's Worker: from the Worker's env (its D1/R2/KV bindings, its secrets,
the platform's other Workers as service bindings) to the `FeatureEnv` the SDK hands the feature,
then the feature's app wrapped by the SDK host (`/_nno/*` routes).

The feature's configuration (platform, stack, prefixes, its settings) is the Worker secret
`NNO_FEATURE_CONFIG`, set by provisioning; the Cloudflare equivalent is a Worker var.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp

from nno.console.keys import platform_keys
from nno.kernel.naming import DEFAULT_STACK_ID, build_resource_name
from nno.sdk.definition import CONFIG_SECRET, D1_BINDING, KV_BINDING, R2_BINDING
from nno.sdk.discovery import InstalledFeature
from nno.sdk.env import AuthClient, FeatureConfig, FeatureEnv, PrefixedKV, PrefixedR2, ServiceResponse
from nno.sdk.host import build_worker_app

if TYPE_CHECKING:
    from nno.edge.workers import WorkerEnv


def feature_config(env: WorkerEnv, installed: InstalledFeature) -> FeatureConfig:
    raw = env.secrets.get(CONFIG_SECRET)
    if raw:
        return FeatureConfig.model_validate_json(raw)
    definition = installed.require()
    return FeatureConfig(featureId=definition.id, version=definition.version, platformId=env.platform_id)


def feature_env(env: WorkerEnv, installed: InstalledFeature) -> FeatureEnv:
    config = feature_config(env, installed)
    auth_worker = config.authWorker or build_resource_name(
        env.platform_id, DEFAULT_STACK_ID, "auth", staging=config.environment == "stg")
    fetch = env.services

    async def auth_fetch(method: str, path: str, headers: dict[str, str], json: Any) -> ServiceResponse:
        if fetch is None:
            return ServiceResponse(503, b'{"error":{"code":"SERVICE_UNAVAILABLE","message":"no service bindings"}}')
        return await fetch(auth_worker, method, path, headers, json)

    d1 = env.d1.get(D1_BINDING)
    kv = env.kv.get(KV_BINDING)
    r2 = env.r2.get(R2_BINDING)
    return FeatureEnv(
        config=config, worker_name=env.name, d1=d1,
        kv=PrefixedKV(kv, config.keyPrefix) if kv is not None else None,
        r2=PrefixedR2(r2, config.keyPrefix) if r2 is not None else None,
        secrets={k: v for k, v in env.secrets.items() if k != CONFIG_SECRET},
        auth=AuthClient(auth_fetch),
        shell_key=platform_keys(env.settings, env.platform_id),
    )


def feature_factory(installed: InstalledFeature) -> Any:
    """A worker factory (WorkerEnv -> ASGI app) for an installed feature package."""
    definition = installed.require()

    async def factory(env: WorkerEnv) -> ASGIApp:
        from nno.iam import service_tokens

        fenv = feature_env(env, installed)
        app: ASGIApp | None = None
        if definition.worker is not None:
            made = definition.worker(fenv)
            app = await made if inspect.isawaitable(made) else made

        def verify(token: str, audience: str) -> dict[str, Any]:
            return service_tokens.verify(env.settings, token, audience=audience)

        return build_worker_app(definition, fenv, app, verify)

    return factory
