"""Configuration from the environment (pydantic-settings).

Every setting is documented in the README's configuration table; keep the two in step.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The upstream services behind the gateway, by binding name. The env var that points a service at a
# URL (scaled mode) is `NNO_<NAME>_URL`; the original's names are accepted too.
SERVICE_NAMES = ("iam", "registry", "billing", "provisioning", "stacks", "cli")

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*(s|m|h)?\s*$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    auth_api_key: str | None = Field(default=None, validation_alias="AUTH_API_KEY")
    data_dir: Path = Field(default=Path(".nno-data"), validation_alias="NNO_DATA_DIR")
    database_url: str | None = Field(default=None, validation_alias="NNO_DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="NNO_REDIS_URL")
    # Prefix for every Redis key NNO writes, so several installations (or test runs) share one Redis.
    redis_prefix: str = Field(default="nno:", validation_alias="NNO_REDIS_PREFIX")
    cors_origins: str = Field(
        default="", validation_alias=AliasChoices("NNO_CORS_ORIGINS", "CORS_ALLOWED_ORIGINS")
    )
    rate_limit: str = Field(default="600/60s", validation_alias="NNO_RATE_LIMIT")
    # Peers whose X-Forwarded-For/-Proto `nno serve` believes (addresses or CIDRs, comma-separated,
    # or `*`); empty: the TCP peer is the client, whatever headers it sends.
    trusted_proxies: str = Field(default="", validation_alias="NNO_TRUSTED_PROXIES")
    auth_cache_ttl_s: float = Field(default=10.0, validation_alias="NNO_AUTH_CACHE_TTL")
    status_cache_ttl_s: float = Field(default=30.0, validation_alias="NNO_STATUS_CACHE_TTL")
    upstream_timeout_s: float = Field(default=30.0, validation_alias="NNO_UPSTREAM_TIMEOUT")
    # Largest request body the gateway passes on (413 beyond); nginx's default, for JSON APIs.
    max_body_bytes: int = Field(default=1_048_576, ge=1, validation_alias="NNO_MAX_BODY_BYTES")
    base_domain: str = Field(default="nno.localhost", validation_alias="NNO_BASE_DOMAIN")
    public_url: str = Field(default="http://127.0.0.1:8787", validation_alias="NNO_PUBLIC_URL")
    provider: str = Field(default="local", validation_alias="NNO_PROVIDER")
    cloudflare_account_id: str | None = Field(default=None, validation_alias="CLOUDFLARE_ACCOUNT_ID")
    cloudflare_api_token: str | None = Field(default=None, validation_alias="CLOUDFLARE_API_TOKEN")
    cloudflare_zone_id: str | None = Field(default=None, validation_alias="CLOUDFLARE_ZONE_ID")
    smtp_url: str | None = Field(default=None, validation_alias="NNO_SMTP_URL")
    mail_from: str = Field(default="NNO <no-reply@nno.localhost>", validation_alias="NNO_MAIL_FROM")
    # Without SMTP, keep sign-in and reset links readable in the mail outbox and the log (a development
    # aid). Unset: on in the local-dev bypass only.
    dev_outbox: bool | None = Field(default=None, validation_alias="NNO_DEV_OUTBOX")
    # Secret used to sign service tokens; derived from AUTH_API_KEY when unset.
    service_token_secret: str | None = Field(default=None, validation_alias="NNO_SERVICE_TOKEN_SECRET")
    # The local cloud's secrets key(s), comma-separated (the first seals); unset = the key file kept
    # in the data directory (nno.edge.secrets_key).
    secrets_key: str | None = Field(default=None, validation_alias="NNO_SECRETS_KEY")
    # The console shell's ShellContext secret(s), comma-separated (the first signs); unset = the key
    # file kept in the data directory (nno.console.keys).
    shell_secret: str | None = Field(default=None, validation_alias="NNO_SHELL_SECRET", repr=False)
    worker_poll_interval_s: float = Field(default=0.5, validation_alias="NNO_WORKER_POLL_INTERVAL")
    # Embedded mode runs the provisioning worker inside `nno serve`; scaled mode runs `nno worker`.
    embedded_worker: bool = Field(default=True, validation_alias="NNO_EMBEDDED_WORKER")
    # Provisioning jobs: how many run at once per worker process, how long a claim holds without a
    # heartbeat before another worker may take the job over, attempts, and the backoff base.
    worker_concurrency: int = Field(default=4, ge=1, le=64, validation_alias="NNO_WORKER_CONCURRENCY")
    # Live Worker instances one process keeps; each holds its D1 connections, so this bounds them.
    worker_instances: int = Field(default=32, ge=1, le=10_000, validation_alias="NNO_WORKER_INSTANCES")
    job_lease_s: float = Field(default=30.0, gt=0, validation_alias="NNO_JOB_LEASE")
    job_max_attempts: int = Field(default=3, ge=1, le=20, validation_alias="NNO_JOB_MAX_ATTEMPTS")
    job_backoff_base_s: float = Field(default=2.0, ge=0, validation_alias="NNO_JOB_BACKOFF_BASE")
    log_level: str = Field(default="info", validation_alias="NNO_LOG_LEVEL")
    log_json: bool = Field(default=True, validation_alias="NNO_LOG_JSON")

    iam_url: str | None = Field(default=None, validation_alias="NNO_IAM_URL")
    registry_url: str | None = Field(default=None, validation_alias="NNO_REGISTRY_URL")
    billing_url: str | None = Field(default=None, validation_alias="NNO_BILLING_URL")
    provisioning_url: str | None = Field(default=None, validation_alias="NNO_PROVISIONING_URL")
    stacks_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NNO_STACKS_URL", "NNO_STACK_REGISTRY_URL")
    )
    cli_url: str | None = Field(
        default=None, validation_alias=AliasChoices("NNO_CLI_URL", "NNO_CLI_SERVICE_URL")
    )

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @property
    def trusted_proxy_list(self) -> list[str]:
        return parse_trusted_proxies(self.trusted_proxies)

    @property
    def dev_bypass(self) -> bool:
        """The seed's local-dev bypass: no AUTH_API_KEY means no authentication at the gateway."""
        return not self.auth_api_key

    @property
    def dev_outbox_enabled(self) -> bool:
        """Whether mail without SMTP goes to the development outbox (live links kept in clear)."""
        if self.smtp_url:
            return False
        return self.dev_outbox if self.dev_outbox is not None else self.dev_bypass

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def rate_limit_parsed(self) -> tuple[int, float]:
        return parse_rate(self.rate_limit)

    @property
    def scaled(self) -> bool:
        return bool(self.database_url and self.database_url.startswith("postgresql"))

    def service_url(self, name: str) -> str | None:
        value: str | None = getattr(self, f"{name}_url", None)
        return value

    @property
    def signing_secret(self) -> bytes:
        """Key for service tokens and internal-call signatures; stable across processes of one install.
        The local cloud's secrets have their own kept key (nno.edge.secrets_key)."""
        if self.service_token_secret:
            return self.service_token_secret.encode()
        base = self.auth_api_key or f"dev-insecure:{self.data_dir.resolve()}"
        return hmac.new(b"nno-service-token", base.encode(), hashlib.sha256).digest()


def parse_rate(value: str) -> tuple[int, float]:
    """`600/60s` -> (600, 60.0). Units s, m, h; no unit means seconds."""
    match = _RATE_RE.match(value)
    if not match:
        raise ValueError(f"rate limit must look like '600/60s', got {value!r}")
    count, span, unit = int(match.group(1)), int(match.group(2)), match.group(3) or "s"
    if count <= 0 or span <= 0:
        raise ValueError("rate limit count and window must be positive")
    return count, float(span * {"s": 1, "m": 60, "h": 3600}[unit])


def parse_trusted_proxies(value: str) -> list[str]:
    """`10.0.0.5, 10.1.0.0/16` -> the entries; each must be an IP address or network, or `*`."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"NNO_TRUSTED_PROXIES entries are IP addresses or CIDR networks (or *), "
                             f"got {entry!r}") from None
    return entries


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
