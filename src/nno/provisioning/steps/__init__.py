"""The ordered steps of the six job types (DECISIONS 12, provisioning-stacks.md §12)."""

from __future__ import annotations

from nno.provisioning.steps.base import Step, StepContext, StepResult
from nno.provisioning.steps.feature import ACTIVATE_FEATURE_STEPS, DEACTIVATE_FEATURE_STEPS
from nno.provisioning.steps.platform import DEPROVISION_PLATFORM_STEPS, PROVISION_PLATFORM_STEPS
from nno.provisioning.steps.stack import ACTIVATE_STACK_STEPS, DEACTIVATE_STACK_STEPS

JOB_STEPS: dict[str, tuple[Step, ...]] = {
    "PROVISION_PLATFORM": PROVISION_PLATFORM_STEPS,
    "DEPROVISION_PLATFORM": DEPROVISION_PLATFORM_STEPS,
    "ACTIVATE_FEATURE": ACTIVATE_FEATURE_STEPS,
    "DEACTIVATE_FEATURE": DEACTIVATE_FEATURE_STEPS,
    "ACTIVATE_STACK": ACTIVATE_STACK_STEPS,
    "DEACTIVATE_STACK": DEACTIVATE_STACK_STEPS,
}

__all__ = ["JOB_STEPS", "Step", "StepContext", "StepResult"]
