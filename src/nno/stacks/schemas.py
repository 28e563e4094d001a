"""Request and response bodies of the Stack Registry (provisioning-stacks.md §7.3).

Template and version records keep the table's snake_case keys, as the documented list shows them;
request bodies are camelCase, as the documented create and update bodies are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from nno.kernel.inputs import InputModel
from nno.sdk.stack import TEMPLATE_NAME_PATTERN, StackDefinition

TemplateName = Annotated[str, StringConstraints(pattern=TEMPLATE_NAME_PATTERN, min_length=1, max_length=64)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Description = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Icon = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Domain = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Changelog = Annotated[str, StringConstraints(max_length=4000)]
VersionText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Status = Literal["active", "deprecated"]


class Strict(InputModel):
    model_config = ConfigDict(extra="forbid")


class TemplateCreate(Strict):
    name: TemplateName
    displayName: DisplayName
    description: Description
    icon: Icon | None = None
    domain: Domain | None = None


class TemplateUpdate(Strict):
    displayName: DisplayName | None = None
    description: Description | None = None
    icon: Icon | None = None
    domain: Domain | None = None
    status: Status | None = None


class VersionPublish(Strict):
    version: VersionText
    definition: StackDefinition
    changelog: Changelog | None = None


class TemplateOut(BaseModel):
    id: str
    name: str
    display_name: str
    description: str
    icon: str | None
    domain: str | None
    latest_version: str | None
    status: str
    created_at: int
    updated_at: int


class TemplateList(BaseModel):
    data: list[TemplateOut]
    total: int


class VersionOut(BaseModel):
    id: str
    template_id: str
    name: str
    version: str
    definition: dict[str, Any]
    status: str
    changelog: str | None
    published_by: str | None
    created_at: int
    deprecated_at: int | None


class VersionList(BaseModel):
    data: list[VersionOut]
    total: int


class TemplateDetail(BaseModel):
    template: TemplateOut | None
    latestVersion: VersionOut | None


class Created(BaseModel):
    id: str


class ListQuery(BaseModel):
    includeDeprecated: bool = Field(False, description="Also list deprecated templates (operators)")
