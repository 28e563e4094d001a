"""Request and response bodies of the Registry API (camelCase, as the docs show them).

Requests refuse unknown fields, so a misspelt field is a 400 rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from nno.kernel.icons import check_icon
from nno.kernel.inputs import InputModel

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=63)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# References to other systems' ids, no longer than the column that keeps them (PostgreSQL enforces it).
Ref = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Ref100 = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Ref64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EntityId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{10}$")]
StackId = Annotated[str, StringConstraints(pattern=r"^(?:[a-z0-9]{10}|default)$")]
Reason = Annotated[str, StringConstraints(max_length=1000)]
Tier = Literal["starter", "growth", "scale"]
Environment = Literal["dev", "stg", "prod"]
Ms = Annotated[int, Field(ge=0, le=2**53)]
# The console shell's rule (an https URL or a PNG/JPEG/WebP/GIF data URL of at most 64 KB); "" is None.
Icon = Annotated[str, AfterValidator(check_icon)]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid")


# --- platforms -------------------------------------------------------------------------------

class PlatformCreate(Strict):
    name: Name
    slug: Slug
    tier: Tier = "starter"
    cfAccountId: Ref64 | None = None
    repoName: Ref | None = None
    stripeCustomerId: Ref100 | None = None
    ownerUserId: Ref64 | None = None
    trialEndsAt: Ms | None = None
    platformClass: Literal["platform", "user_project"] = Field("platform", alias="class")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PlatformUpdate(Strict):
    name: Name | None = None
    tier: Tier | None = None
    cfAccountId: Ref64 | None = None
    repoName: Ref | None = None
    stripeCustomerId: Ref100 | None = None
    ownerUserId: Ref64 | None = None
    trialEndsAt: Ms | None = None
    icon: Icon | None = None


class PlatformOut(BaseModel):
    id: str
    name: str
    slug: str
    status: str
    tier: str
    platformClass: str = Field(alias="class")
    cfAccountId: str | None
    repoName: str | None
    stripeCustomerId: str | None
    ownerUserId: str | None
    cancelledAt: int | None
    cancellationReason: str | None
    suspendedAt: int | None
    suspensionReason: str | None
    trialEndsAt: int | None
    icon: str | None = None
    createdAt: int
    updatedAt: int
    deletedAt: int | None

    model_config = ConfigDict(populate_by_name=True)


class PlatformStatusOut(BaseModel):
    platformId: str
    status: str


class LifecycleRequest(Strict):
    action: Literal["bootstrap", "complete", "suspend", "restore", "cancel", "period_end", "delete"]
    reason: Reason | None = None


class LifecycleEventOut(BaseModel):
    id: str
    platformId: str
    fromStatus: str
    toStatus: str
    action: str
    reason: str | None
    actorType: str
    actorId: str | None
    requestId: str | None
    createdAt: int


# --- tenants -----------------------------------------------------------------------------------

class TenantCreate(Strict):
    name: Name
    slug: Slug
    orgId: Ref64 | None = None


class TenantUpdate(Strict):
    name: Name | None = None
    status: Literal["active", "suspended"] | None = None
    orgId: Ref64 | None = None


class TenantOut(BaseModel):
    id: str
    platformId: str
    parentId: str | None
    type: str
    name: str
    slug: str
    status: str
    orgId: str | None
    createdAt: int
    updatedAt: int
    deletedAt: int | None


TenantOrgStatus = Literal["pending", "failed"]


class TenantOrgRowOut(BaseModel):
    """A tenant whose organization on the platform's auth Worker is not yet in line with it."""

    id: str
    platformId: str
    tenantId: str
    tenantName: str | None
    tenantDeleted: bool
    status: TenantOrgStatus
    attempts: int
    lastError: str | None
    nextAttemptAt: int | None = Field(description="When the dispatcher tries a pending row next (ms)")
    createdAt: int


# --- stacks -------------------------------------------------------------------------------------

StackStatus = Literal["pending", "provisioning", "active", "failed", "deactivated"]


class StackCreate(Strict):
    tenantId: EntityId
    name: Name
    isDefault: bool = False
    templateId: Ref100 | None = None
    repoName: Ref | None = None


class StackUpdate(Strict):
    name: Name | None = None
    templateId: Ref100 | None = None
    templateVersion: Ref64 | None = None
    repoName: Ref | None = None
    status: StackStatus | None = None


class StackOut(BaseModel):
    id: str
    tenantId: str
    platformId: str
    name: str
    isDefault: bool
    templateId: str | None
    templateVersion: str | None = None
    repoName: str | None
    status: str
    createdAt: int
    updatedAt: int


# --- resources, secrets, dns, features, build state -------------------------------------------

ResourceType = Literal["worker", "pages", "d1", "r2", "kv", "queue"]
ResourceStatus = Literal["provisioning", "active", "failed", "deleting", "deleted"]


class ResourceCreate(Strict):
    type: ResourceType
    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    stackId: StackId = "default"
    entityId: EntityId | None = None
    cfResourceId: Annotated[str, StringConstraints(max_length=500)] | None = None
    environment: Environment = "prod"
    status: ResourceStatus = "active"
    featureId: Ref100 | None = None
    provisionJobId: Ref64 | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ResourceUpdate(Strict):
    cfResourceId: Annotated[str, StringConstraints(max_length=500)] | None = None
    status: ResourceStatus | None = None
    provisionJobId: Ref64 | None = None
    metadata: dict[str, Any] | None = None


class ResourceOut(BaseModel):
    id: str
    platformId: str
    stackId: str
    entityId: str | None
    type: str
    name: str
    cfResourceId: str | None
    environment: str
    status: str
    featureId: str | None
    provisionJobId: str | None
    metadata: dict[str, Any]
    createdAt: int
    updatedAt: int
    deletedAt: int | None


SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class SecretStatusIn(Strict):
    name: SecretName
    status: Literal["missing", "set", "rotating", "error"]
    fingerprint: Annotated[str, StringConstraints(max_length=128)] | None = None


class SecretsPut(Strict):
    secrets: Annotated[list[SecretStatusIn], Field(min_length=1, max_length=100)]


class SecretOut(BaseModel):
    id: str
    resourceId: str
    name: str
    status: str
    fingerprint: str | None
    setBy: str | None
    lastSetAt: int | None
    lastRotatedAt: int | None
    createdAt: int
    updatedAt: int


Hostname = Annotated[str, StringConstraints(min_length=1, max_length=253)]


class DnsRecordCreate(Strict):
    hostname: Hostname
    type: Literal["app", "svc"]
    stackId: StackId = "default"
    resourceId: EntityId | None = None
    environment: Environment = "prod"
    target: Annotated[str, StringConstraints(max_length=500)] | None = None
    cfCustomHostnameId: Ref100 | None = None
    status: Literal["pending", "active", "failed", "deleted"] = "active"


class DnsRecordOut(BaseModel):
    id: str
    platformId: str
    stackId: str
    resourceId: str | None
    hostname: str
    type: str
    environment: str
    target: str | None
    cfCustomHostnameId: str | None
    status: str
    createdAt: int
    updatedAt: int


FeatureId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._@/-]{0,99}$")]


class FeatureActivate(Strict):
    featureId: FeatureId
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    entityId: EntityId | None = None
    stackId: StackId | None = None
    environment: Environment = "prod"
    config: dict[str, Any] = Field(default_factory=dict)
    status: Literal["pending", "active", "failed"] = "pending"
    provisionJobId: Ref64 | None = None


class FeatureOut(BaseModel):
    id: str
    platformId: str
    entityId: str
    stackId: str | None
    featureId: str
    version: str
    environment: str
    config: dict[str, Any]
    status: str
    activatedBy: str | None
    activatedAt: int | None
    deactivatedAt: int | None
    provisionJobId: str | None
    createdAt: int
    updatedAt: int


class BuildStatePut(Strict):
    environment: Environment = "prod"
    repoFullName: Ref | None = None
    defaultBranch: Ref100 | None = None
    pagesProjectName: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,63}$")] | None = None
    lastCommitSha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{7,64}$")] | None = None
    lastBuildId: Ref100 | None = None
    lastBuildStatus: Literal["queued", "building", "success", "failure"] | None = None
    lastBuildAt: Ms | None = None


class BuildStateOut(BaseModel):
    platformId: str
    environment: str
    repoFullName: str | None
    defaultBranch: str | None
    pagesProjectName: str | None
    lastCommitSha: str | None
    lastBuildId: str | None
    lastBuildStatus: str | None
    lastBuildAt: int | None
    updatedAt: int


class AuditOut(BaseModel):
    id: str
    platformId: str | None
    entityId: str | None
    actorType: str
    actorId: str | None
    action: str
    targetType: str
    targetId: str | None
    requestId: str | None
    before: Any
    after: Any
    metadata: Any
    createdAt: int


# --- onboarding ------------------------------------------------------------------------------

STEP_NAMES = ("create_platform", "provision_infra", "setup_repo", "deploy_services", "verify")
StepName = Literal["create_platform", "provision_infra", "setup_repo", "deploy_services", "verify"]
StepStatus = Literal["pending", "in_progress", "completed", "failed", "skipped"]
SessionStatus = Literal["pending", "in_progress", "completed", "failed"]


class OnboardingCreate(Strict):
    platformName: Name
    slug: Slug
    tier: Tier
    stackTemplateId: Ref100 | None = None


class StepPatch(Strict):
    name: StepName
    status: StepStatus
    error: Annotated[str, StringConstraints(max_length=2000)] | None = None
    jobId: Ref | None = None
    note: Annotated[str, StringConstraints(max_length=500)] | None = None


class OnboardingPatch(Strict):
    steps: Annotated[list[StepPatch], Field(max_length=5)] | None = None
    status: SessionStatus | None = None
    provisionJobId: Ref64 | None = None
    error: Annotated[str, StringConstraints(max_length=2000)] | None = None


class StepOut(BaseModel):
    name: str
    status: str
    service: str
    note: str | None = None
    error: str | None = None
    jobId: str | None = None
    startedAt: int | None = None
    completedAt: int | None = None


class OnboardingOut(BaseModel):
    id: str
    platformId: str | None
    userId: str
    platformName: str
    slug: str
    tier: str
    stackTemplateId: str | None
    status: str
    steps: list[StepOut]
    provisionJobId: str | None
    error: str | None
    createdAt: int
    updatedAt: int
