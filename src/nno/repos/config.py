"""The CLI Service's own settings (environment variables), kept here rather than in the kernel."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RepoSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    provider: Literal["local", "github"] = Field(default="local", validation_alias="NNO_REPO_PROVIDER")
    github_app_id: str | None = Field(default=None, validation_alias="NNO_GITHUB_APP_ID")
    github_private_key: str | None = Field(default=None, validation_alias="NNO_GITHUB_APP_PRIVATE_KEY")
    github_installation_id: int | None = Field(default=None, validation_alias="NNO_GITHUB_INSTALLATION_ID")
    github_org: str | None = Field(default=None, validation_alias="NNO_GITHUB_ORG")
    github_template: str = Field(default="neutrino-io/nno-stack-starter", validation_alias="NNO_GITHUB_TEMPLATE")
    github_api_url: str = Field(default="https://api.github.com", validation_alias="NNO_GITHUB_API_URL")
