"""The platform lifecycle as data (registry.md §7, DECISIONS 10): seven states, exactly the
documented transitions, and who may trigger each action. No I/O here; `service.transition` applies
it inside one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nno.kernel.identity import Identity

Status = Literal["pending", "provisioning", "active", "suspended", "pending_cancellation", "cancelled", "deleted"]
Action = Literal["bootstrap", "complete", "suspend", "restore", "cancel", "period_end", "delete"]

STATUSES: tuple[str, ...] = (
    "pending", "provisioning", "active", "suspended", "pending_cancellation", "cancelled", "deleted",
)
ACTIONS: tuple[str, ...] = ("bootstrap", "complete", "suspend", "restore", "cancel", "period_end", "delete")

# Where each action leads, and the states it may start from (the documented diagram).
TARGET: dict[str, str] = {
    "bootstrap": "provisioning",
    "complete": "active",
    "suspend": "suspended",
    "restore": "active",
    "cancel": "pending_cancellation",
    "period_end": "cancelled",
    "delete": "deleted",
}
SOURCES: dict[str, frozenset[str]] = {
    "bootstrap": frozenset({"pending"}),
    "complete": frozenset({"provisioning"}),
    "suspend": frozenset({"active"}),
    "restore": frozenset({"suspended"}),
    "cancel": frozenset({"active", "suspended"}),
    "period_end": frozenset({"pending_cancellation"}),
    "delete": frozenset({"pending_cancellation", "cancelled"}),
}

# Who may ask for each action besides services and operators (who may ask for all of them).
OWNER_ACTIONS = frozenset({"cancel"})


def allowed_actions(status: str) -> list[str]:
    return [a for a in ACTIONS if status in SOURCES[a]]


def allowed_targets(status: str) -> list[str]:
    return [TARGET[a] for a in allowed_actions(status)]


@dataclass(frozen=True)
class Decision:
    """The outcome of asking for `action` in `current`: a move, a no-op, or an illegal pair."""

    current: str
    action: str
    target: str
    legal: bool
    noop: bool


def decide(current: str, action: str) -> Decision:
    """Repeating the current state is a no-op; any pair outside the diagram is illegal."""
    target = TARGET[action]
    if current == target:
        return Decision(current, action, target, legal=True, noop=True)
    return Decision(current, action, target, legal=current in SOURCES[action], noop=False)


def may_request(identity: Identity, action: str, *, is_platform_admin: bool) -> bool:
    """Services and operators drive every action; the owner or a platform-admin may cancel."""
    if identity.is_privileged:
        return True
    return action in OWNER_ACTIONS and is_platform_admin and identity.auth_type == "session"
