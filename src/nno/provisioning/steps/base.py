"""What a step is: `run` does the work idempotently (checking for its resource first, DECISIONS 13)
and returns what it did; `undo` compensates it during rollback, using only that recorded output."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nno.kernel.service import ServiceContext
from nno.provisioning.provider_factory import get_provider
from nno.provisioning.providers.base import Provider, ResourceRef
from nno.provisioning.registry_client import RegistryClient


@dataclass
class StepContext:
    ctx: ServiceContext
    job_id: str
    job_type: str
    platform_id: str
    environment: str
    payload: dict[str, Any]
    # Outputs of this job's earlier steps, by step name (recorded in the job row).
    outputs: dict[str, dict[str, Any]]
    # True when this step already started in an earlier run of the job (a crash or a failed
    # attempt): a resource it finds now was made by that run, so rollback must remove it too.
    resumed: bool = False
    # What the step's `observe` saw before the step first started (empty for steps without one).
    observed: dict[str, Any] = field(default_factory=dict)

    @property
    def provider(self) -> Provider:
        return get_provider(self.ctx)

    @property
    def registry(self) -> RegistryClient:
        return RegistryClient(self.ctx)

    @property
    def base_domain(self) -> str:
        return self.ctx.settings.base_domain

    def owned(self, ref: ResourceRef) -> bool:
        """Whether this job created `ref` (and so may delete it on rollback)."""
        return ref.created or self.resumed


@dataclass
class StepResult:
    output: dict[str, Any] = field(default_factory=dict)
    changed: bool = True  # False: everything already existed, recorded as "skipped"


RunFn = Callable[[StepContext], Awaitable[StepResult]]
UndoFn = Callable[[StepContext, dict[str, Any]], Awaitable[None]]
TargetsFn = Callable[[StepContext], list[tuple[str, str]]]
ObserveFn = Callable[[StepContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Step:
    name: str
    run: RunFn
    undo: UndoFn | None = None
    # The cloud resources (type, name) the step may create. Before its first run the engine notes
    # which of them already exist, so that a step which fails after the cloud made something (a
    # timeout after the create) is cleaned up too, without touching what was there before the job.
    targets: TargetsFn | None = None
    # For steps that write elsewhere (the Registry): `observe` notes what exists before the step
    # first starts (kept in the job row, given to the run as `sctx.observed`), and `cleanup(sctx,
    # observed)` removes what a step that failed or died midway made since, without its output.
    observe: ObserveFn | None = None
    cleanup: UndoFn | None = None


def ref_out(sctx: StepContext, ref: ResourceRef) -> dict[str, Any]:
    return {
        "type": ref.type,
        "name": ref.name,
        "providerId": ref.provider_id,
        "created": sctx.owned(ref),
        "metadata": dict(ref.metadata),
    }


async def delete_by_type(provider: Provider, kind: str, name: str) -> None:
    """Remove one provider resource by type; every delete_* succeeds when it is already gone."""
    if kind == "d1":
        await provider.delete_d1(name)
    elif kind == "r2":
        await provider.delete_r2(name)
    elif kind == "kv":
        await provider.delete_kv(name)
    elif kind == "worker":
        await provider.delete_worker(name)
    elif kind == "pages":
        await provider.delete_pages(name)
    elif kind == "dns":
        await provider.delete_dns(name)
    elif kind == "secret":
        worker, _, key = name.partition(":")
        await provider.delete_secret(worker, key)
    else:
        raise ValueError(f"unknown resource type {kind!r}")


async def undo_created(sctx: StepContext, output: dict[str, Any]) -> None:
    """Compensation shared by the ensure-style steps: delete, newest first, what this job created."""
    for res in reversed(output.get("resources", [])):
        if res.get("created"):
            await delete_by_type(sctx.provider, res["type"], res["name"])
