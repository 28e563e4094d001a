"""The onboarding session's five steps (registry.md §8.1), as plain data and pure updates."""

from __future__ import annotations

from typing import Any

STEP_SERVICES: dict[str, str] = {
    "create_platform": "registry",
    "provision_infra": "provisioning",
    "setup_repo": "cli",
    "deploy_services": "cli",
    "verify": "registry",
}
STEP_NAMES = tuple(STEP_SERVICES)
DONE = frozenset({"completed", "skipped"})
FINAL = frozenset({"completed", "skipped", "failed"})


def initial_steps() -> list[dict[str, Any]]:
    return [
        {"name": name, "status": "pending", "service": service, "note": None, "error": None, "jobId": None,
         "startedAt": None, "completedAt": None}
        for name, service in STEP_SERVICES.items()
    ]


def set_step(steps: list[dict[str, Any]], name: str, now: int, **changes: Any) -> list[dict[str, Any]]:
    """A copy of `steps` with `name` changed; start and completion times follow the status."""
    out = []
    for step in steps:
        step = dict(step)
        if step["name"] == name:
            status = changes.get("status", step["status"])
            for key, value in changes.items():
                step[key] = value
            if status == "in_progress" and step.get("startedAt") is None:
                step["startedAt"] = now
            if status in FINAL:
                step["startedAt"] = step.get("startedAt") or now
                step["completedAt"] = now
            elif status in ("pending", "in_progress"):
                step["completedAt"] = None
            if status != "failed" and "error" not in changes:
                step["error"] = None
        out.append(step)
    return out


def step(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in steps if s["name"] == name)


def derive_status(steps: list[dict[str, Any]]) -> str:
    statuses = [s["status"] for s in steps]
    if "failed" in statuses:
        return "failed"
    if all(s in DONE for s in statuses):
        return "completed"
    if any(s != "pending" for s in statuses):
        return "in_progress"
    return "pending"


def verify_if_ready(steps: list[dict[str, Any]], platform_status: str, resource_count: int,
                    now: int) -> list[dict[str, Any]]:
    """`verify` completes once infrastructure is provisioned and the platform is active."""
    if step(steps, "verify")["status"] in DONE:
        return steps
    if platform_status == "active" and step(steps, "provision_infra")["status"] in DONE:
        return set_step(steps, "verify", now, status="completed",
                        note=f"platform active; {resource_count} resources registered")
    return steps
