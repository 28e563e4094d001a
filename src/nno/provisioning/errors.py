"""Why a step failed, and whether another attempt may succeed."""

from __future__ import annotations


class StepError(Exception):
    def __init__(self, message: str, *, code: str = "STEP_FAILED", retryable: bool = True) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class LeaseLost(Exception):
    """Another worker owns the job now (our lease expired); stop touching it."""
