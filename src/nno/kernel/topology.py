"""Whether a process's place in a deployment can work, decided before it serves anything.

Two kinds of checks. `configuration_problems` reads only the settings: a split deployment on SQLite
files (each process would have databases of its own), a service nobody serves (no `--service` here,
no `NNO_<SERVICE>_URL`), several processes without PostgreSQL. `probe_service` asks a remote service
who it is (`GET /_nno/identity`, answered by every NNO process to callers holding the internal
token): a URL that reaches a gateway, another service, or something that is not a service of this
install cannot work and is refused; an address nobody answers yet may simply start later.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from typing import Any

from nno.kernel.bindings import HTTPBinding, UpstreamError, internal_token
from nno.kernel.config import SERVICE_NAMES, Settings

IDENTITY_PATH = "/_nno/identity"

# Verdicts of a probe.
OK = "ok"
UNREACHABLE = "unreachable"  # nothing answers yet: a warning, the process keeps asking
WRONG = "wrong"  # something answers that is not the service: the configuration cannot work


def url_var(name: str) -> str:
    return f"NNO_{name.upper()}_URL"


def configuration_problems(settings: Settings, services: list[str], *, processes: int = 1) -> list[str]:
    """What makes this process's configuration unworkable, as sentences for the operator."""
    problems: list[str] = []
    if services and not settings.scaled:
        problems.append(
            "--service splits NNO into processes that must share every database, and SQLite files "
            "are one process's: set NNO_DATABASE_URL to a PostgreSQL database (the same for every process)")
    if services:
        missing = [n for n in SERVICE_NAMES if n not in services and not settings.service_url(n)]
        if missing:
            named = ", ".join(f"{n} ({url_var(n)})" for n in missing)
            problems.append(
                f"no process serves {named}: this process serves only {', '.join(services)}, so give each "
                f"other service's address (a process started with `nno serve --service NAME`), or serve it "
                f"here with another --service")
    if processes > 1 and not settings.scaled:
        problems.append(
            f"--workers {processes} needs PostgreSQL (NNO_DATABASE_URL): SQLite takes one writer at a time, "
            "and its writers queue in order only within one process, so more processes add no throughput "
            "and make writers wait on each other in SQLite's busy loop instead; run one process embedded")
    return problems


def configuration_warnings(settings: Settings, services: list[str], *, processes: int = 1) -> list[str]:
    if (services or processes > 1) and not settings.redis_url:
        return ["NNO_REDIS_URL is not set: each process keeps its own rate-limit budget and platform status "
                "cache, so limits multiply and a status change is seen by the other processes only after "
                "NNO_STATUS_CACHE_TTL"]
    return []


@dataclass
class Probe:
    service: str
    url: str
    verdict: str
    detail: str

    @property
    def message(self) -> str:
        return f"{url_var(self.service)}={self.url} {self.detail}"


def identity(served: list[str], *, gateway: bool, mounted: list[str] | None = None) -> dict[str, Any]:
    """`services`: what this address serves; `mounted`: the services of a process serving several,
    each at `{address}/{name}`."""
    body: dict[str, Any] = {"nno": "identity", "gateway": gateway, "services": sorted(served)}
    if mounted:
        body["mounted"] = sorted(mounted)
    return body


def identity_token_ok(settings: Settings, token: bytes | None) -> bool:
    expected = internal_token(settings.signing_secret).encode()
    return token is not None and hmac.compare_digest(token, expected)


async def probe_service(binding: HTTPBinding, timeout_s: float = 5.0) -> Probe:
    name, url = binding.name, binding.base_url
    hint = f"; point it at the address of `nno serve --service {name}`"
    try:
        async with asyncio.timeout(timeout_s):
            resp = await binding.request("GET", IDENTITY_PATH)
    except (UpstreamError, TimeoutError) as exc:
        return Probe(name, url, UNREACHABLE, f"does not answer ({str(exc) or 'timeout'})")
    try:
        body = resp.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if resp.status == 200 and isinstance(body, dict) and body.get("nno") == "identity":
        served = [str(s) for s in body.get("services") or []]
        if body.get("gateway"):
            return Probe(name, url, WRONG, "is a gateway, not the service" + hint)
        mounted = [str(s) for s in body.get("mounted") or []]
        if name in mounted:
            return Probe(name, url, WRONG, f"serves several services, each under its name: use {url}/{name}")
        if name not in served:
            return Probe(name, url, WRONG, f"serves {', '.join(served) or 'nothing'}, not {name}" + hint)
        return Probe(name, url, OK, "answers")
    if resp.status == 401:
        return Probe(name, url, WRONG, "refuses this install's internal token: a gateway, or a service started "
                                       "with another AUTH_API_KEY / NNO_SERVICE_TOKEN_SECRET" + hint)
    if resp.status == 404 and await _looks_like_gateway(binding, timeout_s):
        return Probe(name, url, WRONG, "is a gateway (its paths carry /api/v1), not the service" + hint)
    return Probe(name, url, WRONG, f"is not an NNO service (GET {IDENTITY_PATH} answered {resp.status})" + hint)


async def _looks_like_gateway(binding: HTTPBinding, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            resp = await binding.request("GET", "/openapi.json")
        body = json.loads(resp.body) if resp.status == 200 else None
    except (UpstreamError, TimeoutError, ValueError, UnicodeDecodeError):
        return False
    paths = body.get("paths", {}) if isinstance(body, dict) else {}
    return isinstance(paths, dict) and any(str(p).startswith("/api/v1/") for p in paths)


def remote_bindings(settings: Settings, served: list[str]) -> list[HTTPBinding]:
    """The services this process reaches over HTTP (its own `--service`s are served, never called)."""
    return [HTTPBinding(n, url, settings.signing_secret, settings.upstream_timeout_s)
            for n in SERVICE_NAMES if n not in served and (url := settings.service_url(n))]


async def probe_all(bindings: list[HTTPBinding], timeout_s: float = 5.0) -> list[Probe]:
    return list(await asyncio.gather(*(probe_service(b, timeout_s) for b in bindings)))


def refusals(settings: Settings, served: list[str], timeout_s: float = 3.0) -> list[str]:
    """Ask each service this process reaches over HTTP who it is (before it serves anything); what
    answers as something else (a gateway, another service, another install) cannot work. Silence is
    not refused: the service may start after this process, which keeps asking
    (`Core.watch_remote_services`)."""

    async def ask() -> list[str]:
        bindings = remote_bindings(settings, served)
        try:
            return [p.message for p in await probe_all(bindings, timeout_s) if p.verdict == WRONG]
        finally:
            for binding in bindings:
                await binding.close()

    if not any(n not in served and settings.service_url(n) for n in SERVICE_NAMES):
        return []
    return asyncio.run(ask())
