"""Job types, states and step statuses (DECISIONS 12)."""

from __future__ import annotations

from typing import Literal

JobType = Literal[
    "PROVISION_PLATFORM",
    "DEPROVISION_PLATFORM",
    "ACTIVATE_FEATURE",
    "DEACTIVATE_FEATURE",
    "ACTIVATE_STACK",
    "DEACTIVATE_STACK",
]
JOB_TYPES: tuple[str, ...] = (
    "PROVISION_PLATFORM",
    "DEPROVISION_PLATFORM",
    "ACTIVATE_FEATURE",
    "DEACTIVATE_FEATURE",
    "ACTIVATE_STACK",
    "DEACTIVATE_STACK",
)
# The DNS guide's name for the bootstrap job; accepted on input, stored as PROVISION_PLATFORM.
TYPE_ALIASES = {"BOOTSTRAP_PLATFORM": "PROVISION_PLATFORM"}

QUEUED = "QUEUED"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
ROLLING_BACK = "ROLLING_BACK"
ROLLED_BACK = "ROLLED_BACK"
ROLLBACK_FAILED = "ROLLBACK_FAILED"
JOB_STATES = (QUEUED, RUNNING, COMPLETED, FAILED, ROLLING_BACK, ROLLED_BACK, ROLLBACK_FAILED)
# A job ends in one of these; until then it holds its (platform, type, target) live key.
TERMINAL_STATES = (COMPLETED, ROLLED_BACK, ROLLBACK_FAILED)
# States a worker holds under a lease; an expired lease makes the job claimable again.
LEASED_STATES = (RUNNING, FAILED, ROLLING_BACK)
# An operator may re-queue a job that ended in failure.
RETRYABLE_STATES = (FAILED, ROLLED_BACK, ROLLBACK_FAILED)

STEP_PENDING = "pending"
STEP_RUNNING = "running"
STEP_COMPLETED = "completed"
STEP_SKIPPED = "skipped"  # the resource already existed: nothing was created
STEP_FAILED = "failed"
STEP_ROLLED_BACK = "rolled_back"
STEP_ROLLBACK_FAILED = "rollback_failed"


def normalize_type(value: str) -> str:
    return TYPE_ALIASES.get(value, value)


def live_key(platform_id: str, job_type: str, target: str) -> str:
    return f"{platform_id}|{job_type}|{target}"


# Job types that only remove things (Workers, DNS, data, Registry rows): they may still run on a gone
# platform. The others deploy, and the Registry would refuse to record what they deploy.
REMOVING_JOB_TYPES = frozenset({"DEPROVISION_PLATFORM", "DEACTIVATE_FEATURE", "DEACTIVATE_STACK"})
