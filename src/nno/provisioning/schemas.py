"""Request and response bodies (camelCase, as the spec shows them; provisioning-stacks.md §3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nno.kernel.emails import Email
from nno.kernel.inputs import InputModel
from nno.provisioning.models import DeadLetter, JobEvent, ProvisionJob
from nno.sdk.stack import StackDefinition

Environment = Literal["dev", "stg", "prod"]
PlatformId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{10}$")]
StackId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{10}$")]
StackRef = Annotated[str, StringConstraints(pattern=r"^(?:[a-z0-9]{10}|default)$")]
EntityId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# A feature id becomes part of Worker names and hostnames, so it follows their rule.
FeatureId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=40)]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,64}$")]
SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class _Body(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ProvisionPlatformRequest(_Body):
    platformId: PlatformId
    onboardingSessionId: SessionId | None = None
    planTier: Literal["starter", "growth", "scale"] | None = None
    billingEmail: Email | None = None
    defaultEntityId: EntityId | None = None
    environment: Environment = "prod"


class DeprovisionPlatformRequest(_Body):
    platformId: PlatformId
    environment: Environment = "prod"
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class FeatureActivateRequest(_Body):
    platformId: PlatformId
    entityId: EntityId
    featureId: FeatureId
    featureVersion: Version
    environment: Environment
    stackId: StackRef = "default"


class FeatureDeactivateRequest(_Body):
    platformId: PlatformId
    entityId: EntityId
    featureId: FeatureId
    environment: Environment
    deleteData: bool = False
    stackId: StackRef = "default"


class StackResources(_Body):
    d1: bool = False
    r2: bool = False
    kv: bool = False


class StackFeature(_Body):
    featureId: FeatureId
    version: Version | None = None


TemplateId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]
TemplateVersion = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.+-]{1,64}$")]


class StackActivateRequest(_Body):
    """Path A: `templateId` (default: the one the Registry's stack row names) and optionally
    `templateVersion` (default: the latest active one, pinned into the job). Path B: `definition`,
    a StackDefinition of the platform's own. The inline `resources` + `features` form is Path B too."""

    platformId: PlatformId
    stackId: StackId
    entityId: EntityId | None = None
    templateId: TemplateId | None = None
    templateVersion: TemplateVersion | None = None
    definition: StackDefinition | None = None
    environment: Environment = "prod"
    resources: StackResources = Field(default_factory=StackResources)
    features: Annotated[list[StackFeature], Field(max_length=50)] = Field(default_factory=list)


class StackUpgradeRequest(_Body):
    """Move an active Path A stack to a newer version of its template (default: the latest)."""

    platformId: PlatformId
    stackId: StackId
    entityId: EntityId | None = None
    templateVersion: TemplateVersion | None = None
    environment: Environment = "prod"


class StackDeactivateRequest(_Body):
    platformId: PlatformId
    stackId: StackId
    entityId: EntityId | None = None
    environment: Environment = "prod"
    deleteData: bool = False
    # Older callers sent the activation's body again; what is removed comes from the Registry.
    templateId: TemplateId | None = None
    resources: StackResources = Field(default_factory=StackResources)
    features: Annotated[list[StackFeature], Field(max_length=50)] = Field(default_factory=list)


class JobAccepted(BaseModel):
    jobId: str
    status: str
    duplicate: bool = False


class JobStepOut(BaseModel):
    """One step's record: status, times, error, and what it made (its output)."""

    model_config = ConfigDict(extra="allow")
    name: str
    status: str
    startedAt: int | None = None
    finishedAt: int | None = None
    error: str | None = None
    output: dict[str, Any] | None = None


class JobOut(BaseModel):
    id: str
    type: str
    status: str
    platformId: str
    entityId: str | None
    target: str
    environment: str
    payload: dict[str, Any]
    steps: list[JobStepOut]
    attempts: int
    maxAttempts: int
    nextAttemptAt: int
    worker: str | None
    leaseExpiresAt: int | None
    heartbeatAt: int | None
    error: str | None
    errorCode: str | None
    onboardingSessionId: str | None
    requestedBy: str | None
    createdAt: int
    updatedAt: int
    startedAt: int | None
    completedAt: int | None


class JobPage(BaseModel):
    data: list[JobOut]
    pagination: dict[str, Any]


class JobEventOut(BaseModel):
    id: int
    jobId: str
    platformId: str
    event: str
    fromStatus: str | None
    toStatus: str | None
    step: str | None
    attempt: int
    actor: str | None
    details: dict[str, Any] | None
    createdAt: int


class DeadLetterOut(BaseModel):
    id: str
    jobId: str
    platformId: str
    type: str
    error: str
    errorCode: str | None
    attempts: int
    createdAt: int
    resolvedAt: int | None


def job_out(job: ProvisionJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "status": job.status,
        "platformId": job.platform_id,
        "entityId": job.entity_id,
        "target": job.target,
        "environment": job.environment,
        "payload": job.payload,
        "steps": job.steps,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "nextAttemptAt": job.next_attempt_at,
        "worker": job.lease_owner,
        "leaseExpiresAt": job.lease_expires_at,
        "heartbeatAt": job.heartbeat_at,
        "error": job.error,
        "errorCode": job.error_code,
        "onboardingSessionId": job.onboarding_session_id,
        "requestedBy": job.requested_by,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "startedAt": job.started_at,
        "completedAt": job.completed_at,
    }


def event_out(ev: JobEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "jobId": ev.job_id,
        "platformId": ev.platform_id,
        "event": ev.event,
        "fromStatus": ev.from_status,
        "toStatus": ev.to_status,
        "step": ev.step,
        "attempt": ev.attempt,
        "actor": ev.actor,
        "details": ev.details,
        "createdAt": ev.created_at,
    }


def dead_letter_out(dl: DeadLetter) -> dict[str, Any]:
    return {
        "id": dl.id,
        "jobId": dl.job_id,
        "platformId": dl.platform_id,
        "type": dl.type,
        "error": dl.error,
        "errorCode": dl.error_code,
        "attempts": dl.attempts,
        "createdAt": dl.created_at,
        "resolvedAt": dl.resolved_at,
    }
