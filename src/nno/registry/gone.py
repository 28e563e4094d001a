"""The gone-platform rule: a platform that is `cancelled` or `deleted` never grows again.

registry.md §7.1: `cancelled` = "resources scheduled for cleanup", `deleted` = "resources
deprovisioned". Neither is restorable (the only way out of `cancelled` is `delete`, and `deleted` is
terminal), so nothing new may appear on them: no tenant, stack, feature activation, resource, DNS
record, secret status, build state or settings change. What deprovisioning (and the rollback of a
job caught by the delete) does must keep working: removing resources, retiring DNS records,
deactivating features and stacks, soft-deleting tenants, closing out an onboarding session. Reads
keep working for everyone who could read before (the audit trail).

`suspended` is not gone: it is restorable (`restore` -> `active`), and Billing or an operator may
need to keep a suspended platform's records current so it comes back whole. Services and operators
keep writing; everyone else (its owner, its admins, their keys) is refused every write with the
gateway's 451 `PLATFORM_SUSPENDED` (`nno.kernel.platform_status.check_not_suspended`), whichever
platform their session has active: the gateway's 451 is only the first line.

Every write path names what it does as a `Write` and hands it to `store.lock_platform`, which
applies `check_write` while holding the platform row lock, so a write and a `delete` transition
cannot interleave: either the write commits first and deprovisioning sees it, or it sees `deleted`.
A path that only knows after reading a row whether it creates something (DNS registration) calls
`check_write` again with the stricter `Write`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nno.kernel.errors import NNOError
from nno.kernel.platform_status import GONE_STATUSES, check_not_suspended

ERROR_CODE = "PLATFORM_INACTIVE"

WriteKind = Literal["grow", "configure", "cleanup", "lifecycle"]
REFUSED_WHEN_GONE: frozenset[str] = frozenset({"grow", "configure"})


@dataclass(frozen=True)
class Write:
    """What a write does to a platform: `grow` adds a record, `configure` changes one (or the
    platform's settings), `cleanup` removes or retires one, `lifecycle` is a status transition (the
    transition table governs those)."""

    operation: str  # "create a tenant": reads after "Cannot ..."
    kind: WriteKind

    @classmethod
    def grow(cls, operation: str) -> Write:
        return cls(operation, "grow")

    @classmethod
    def configure(cls, operation: str) -> Write:
        return cls(operation, "configure")

    @classmethod
    def cleanup(cls, operation: str) -> Write:
        return cls(operation, "cleanup")

    @classmethod
    def lifecycle(cls, operation: str) -> Write:
        return cls(operation, "lifecycle")


def is_gone(status: str) -> bool:
    return status in GONE_STATUSES


def check_write(platform_id: str, status: str, write: Write, *, privileged: bool) -> None:
    """409 `PLATFORM_INACTIVE` when `write` would add to or reconfigure a gone platform; 451
    `PLATFORM_SUSPENDED` for any write on a suspended one by a caller other than a service or an
    operator (`privileged`)."""
    check_not_suspended(platform_id, status, privileged=privileged, operation=write.operation)
    if is_gone(status) and write.kind in REFUSED_WHEN_GONE:
        raise NNOError(409, ERROR_CODE,
                       f"Cannot {write.operation}: the platform is {status}; it only sheds what it has",
                       {"platformId": platform_id, "status": status, "operation": write.operation,
                        "kind": write.kind, "allowedKinds": ["cleanup", "lifecycle"]})
