"""Request and response bodies (cli-service OpenAPI, billing-cli-shell.md §3.5)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
FeatureId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$")]
Environment = Literal["dev", "stg", "prod"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateRepo(Strict):
    platformId: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{10}$")]
    displayName: Text200
    planTier: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    environment: Environment = "prod"
    onboardingSessionId: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None


class ActivateFeature(Strict):
    featureId: FeatureId
    version: Version
    config: dict[str, Any] = Field(default_factory=dict)
    environment: Environment | None = None


class DeactivateFeature(Strict):
    featureId: FeatureId
    environment: Environment | None = None


class FeatureActivation(Strict):
    featureId: FeatureId
    version: Version
    config: dict[str, Any] = Field(default_factory=dict)


MAX_BATCH = 100


class ApplyFeatures(Strict):
    """Several features (de)activated in one commit (a stack's members), so one build runs."""

    activate: list[FeatureActivation] = Field(default_factory=list, max_length=MAX_BATCH)
    deactivate: list[FeatureId] = Field(default_factory=list, max_length=MAX_BATCH)
    environment: Environment | None = None

    @model_validator(mode="after")
    def _one_change_per_feature(self) -> ApplyFeatures:
        ids = [a.featureId for a in self.activate] + list(self.deactivate)
        if not ids:
            raise ValueError("name at least one feature to activate or deactivate")
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"each feature may appear once: {', '.join(twice)}")
        return self


class TriggerBuild(Strict):
    environment: Environment | None = None
    # What a `git push` just sent: its build, if it has one already, is the answer.
    commitSha: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?$")] | None = None


class RepoCreated(BaseModel):
    platformId: str
    repoFullName: str
    status: Literal["created", "exists"]


class RepoInfo(BaseModel):
    platformId: str
    repoFullName: str
    defaultBranch: str
    cfPagesProjectName: str
    createdAt: int
    cloneUrl: str


class BuildOut(BaseModel):
    id: str
    platformId: str
    environment: str
    commitSha: str
    status: str
    trigger: str
    error: str | None
    createdAt: int
    startedAt: int | None
    finishedAt: int | None


class BuildLog(BuildOut):
    log: str


class FeaturesApplied(BaseModel):
    status: Literal["applied", "unchanged"]
    activated: list[dict[str, str]]
    deactivated: list[str]
    commitSha: str | None
    buildId: str | None


class RepoDeleted(BaseModel):
    platformId: str
    repoFullName: str
    status: Literal["deleted", "archived"]
    buildsDeleted: int


class FeatureChange(BaseModel):
    status: Literal["activated", "deactivated", "unchanged"]
    featureId: str
    version: str | None = None
    commitSha: str | None
    buildId: str | None
